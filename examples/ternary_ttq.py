"""TTQ: a float CNN -> ternary weights {-W_n, 0, +W_p} -> TFLite shift ops.

Trained Ternary Quantization (Zhu et al. 2017): starting from the float model, each
quantized layer's kernel becomes {-W_n, 0, +W_p} (0 where |w| is below a threshold
of its largest |w|), with the two scales W_p and W_n trained beside the latent
weights. The converter deploys each such layer as a ``TFQP_SHIFT_*`` op with 2-bit
codes and two accumulator classes (the positive and the negative level).

    python examples/ternary_ttq.py            # 1 float + 2 TTQ epochs on MNIST
    python examples/ternary_ttq.py --quick    # 4096 images, 1 epoch: a smoke run
"""

import example_data  # (options first, TensorFlow later: --help answers at once)


def main(argv=None):
    parser = example_data.parser(__doc__, "out/ternary_ttq", default_epochs=2)
    parser.add_argument("--float-epochs", type=int, default=1)
    args, data = example_data.start(parser, argv)
    import numpy as np
    from tfq_plus import quantizers as tq

    import small_cnn
    from deploy_folder import deploy_to_folder

    float_model = small_cnn.train_float(data, 1 if args.quick else args.float_epochs, args.batch_size)

    model = small_cnn.quantized_copy(float_model, "ttq", data, kernel_quantizer=lambda: tq.TTQ())
    print(f"TTQ fine-tuning, {args.epochs} epoch(s)", flush=True)
    small_cnn.fine_tune(model, data, args.epochs, args.batch_size)
    for name in small_cnn.QUANTIZED_LAYERS:
        layer = model.get_layer(name)
        levels = np.unique(layer.kernel_quantizer(layer.kernel).numpy())
        print(f"{name}: ternary levels {', '.join(f'{v:+.4f}' for v in levels)}")

    deploy_to_folder(model, data, args.out, "ttq_cnn", verify_samples=args.verify_samples,
                     min_agreement=args.min_agreement)


if __name__ == "__main__":
    main()
