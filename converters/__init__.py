"""tfq_plus.converters: Keras model -> TFLite flatbuffer with TFQP custom ops."""
