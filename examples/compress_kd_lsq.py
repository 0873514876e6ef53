"""Compress: a 4-bit LSQ / PACT student, distilled from a float teacher, pruned 50 %.

Three recipes in one fine-tuning run, starting from the trained float teacher's
weights:

- quantization: conv2, conv3, fc1 and fc2 get LSQ 4-bit kernels (Esser et al.
  2020: 16 signed levels, a trained step size) and PACT 4-bit inputs (Choi et al.
  2018: the ReLU becomes a trained clip [0, alpha] with 16 levels);
- distillation (``tfq_plus.distillation.Distiller``, Hinton et al. 2015): the
  student learns from the teacher's softened outputs (T = 4) as well as the labels;
- pruning (``tfq_plus.pruning.prune_and_quantize``, TFMOT's low-magnitude pruning on
  the latent kernels): half of every quantized kernel becomes zero, ramped over the
  first 60 % of the steps.

Then the pruned student converts, is verified against Keras, and lands in one folder
with its C array and report.

    python examples/compress_kd_lsq.py            # 1 teacher + 3 student epochs on MNIST
    python examples/compress_kd_lsq.py --quick    # 4096 images, 1 epoch: a smoke run
"""

import example_data  # (options first, TensorFlow later: --help answers at once)


def main(argv=None):
    parser = example_data.parser(__doc__, "out/compress_kd_lsq", default_epochs=3)
    parser.add_argument("--teacher-epochs", type=int, default=1)
    parser.add_argument("--sparsity", type=float, default=0.5, help="fraction of zeros per kernel")
    args, data = example_data.start(parser, argv)
    import tensorflow as tf
    from tfq_plus import pruning
    from tfq_plus import quantizers as tq
    from tfq_plus.distillation import Distiller

    import small_cnn
    from deploy_folder import deploy_to_folder

    teacher = small_cnn.train_float(data, 1 if args.quick else args.teacher_epochs, args.batch_size)

    student = small_cnn.quantized_copy(
        teacher, "lsq_pact_student", data, kernel_quantizer=lambda: tq.LSQ(bits=4, signed=True),
        input_quantizer=lambda: tq.PACT(bits=4, alpha_init=4.0),
        activation="linear")  # PACT on each layer's input is the ReLU
    steps = args.epochs * -(-len(data.x_train) // args.batch_size)
    pruned, pruning_callbacks = pruning.prune_and_quantize(
        student, args.sparsity, end_step=max(int(0.6 * steps), 1), frequency=max(steps // 20, 1),
        exclude=["stem"])

    distiller = Distiller(pruned, teacher, temperature=4.0, alpha=0.7,
                          student_outputs="logits", teacher_outputs="logits")
    distiller.compile(optimizer=tf.keras.optimizers.Adam(5e-4), metrics=["accuracy"])
    print(f"distilling into the pruned 4-bit student, {args.epochs} epoch(s)", flush=True)
    distiller.fit(data.x_train, data.y_train, batch_size=args.batch_size, epochs=args.epochs,
                  verbose=1, callbacks=pruning_callbacks)

    student = pruning.strip(pruned)  # the plain larq model, pruned kernels kept
    small_cnn.compile_for_logits(student, 5e-4)
    _, accuracy = student.evaluate(data.x_test, data.y_test, verbose=0)
    print(f"Keras test accuracy on all {len(data.x_test)} test images: {100 * accuracy:.2f} %")
    for name, sparsity in pruning.kernel_sparsity(student).items():
        print(f"{name}: {100 * sparsity.quantized:.1f} % zeros in the quantized kernel")

    deploy_to_folder(student, data, args.out, "compressed_cnn", verify_samples=args.verify_samples,
                     min_agreement=args.min_agreement)


if __name__ == "__main__":
    main()
