"""INQ: a float CNN -> 4-bit power-of-two weights -> TFLite shift ops.

Incremental Network Quantization (Zhou et al. 2017): train the float model, then
fine-tune while ``INQSchedule`` freezes a growing share of every kernel at its
nearest power of two (the largest weights first: 50 %, 75 %, 87.5 %, then all),
the rest still training to make up for it. With every weight in {0, +-2^e}, the
converter deploys conv2, conv3, fc1 and fc2 as ``TFQP_SHIFT_*`` ops: 4-bit codes
through a code table instead of int8 multiplies (the float stem stays int8).

    python examples/inq_shift.py              # 1 float + 2 INQ epochs on MNIST
    python examples/inq_shift.py --quick      # 4096 images, 1 epoch: a smoke run
"""

import example_data  # (options first, TensorFlow later: --help answers at once)


def main(argv=None):
    parser = example_data.parser(__doc__, "out/inq_shift", default_epochs=2)
    parser.add_argument("--float-epochs", type=int, default=1)
    parser.add_argument("--bits", type=int, default=4, help="power-of-two bits (sign + exponent)")
    args, data = example_data.start(parser, argv)
    from tfq_plus import quantizers as tq
    from tfq_plus.callbacks import INQQuantizer, INQSchedule

    import small_cnn
    from deploy_folder import deploy_to_folder

    float_model = small_cnn.train_float(data, 1 if args.quick else args.float_epochs, args.batch_size)

    model = small_cnn.quantized_copy(
        float_model, f"inq{args.bits}", data,
        kernel_quantizer=lambda: INQQuantizer(tq.PowerOfTwo(bits=args.bits)))
    # the paper's accumulated portions, spread over the fine-tuning steps
    steps = args.epochs * -(-len(data.x_train) // args.batch_size)
    schedule = INQSchedule({0: 0.5, steps // 4: 0.75, steps // 2: 0.875, (3 * steps) // 4: 1.0},
                           unit="step")
    print(f"INQ fine-tuning to {args.bits}-bit powers of two, {args.epochs} epoch(s)", flush=True)
    small_cnn.fine_tune(model, data, args.epochs, args.batch_size, callbacks=[schedule])
    frozen = min(model.get_layer(n).kernel_quantizer.frozen_fraction()
                 for n in small_cnn.QUANTIZED_LAYERS)
    print(f"frozen at powers of two: {100 * frozen:.1f} % of every quantized kernel")

    deploy_to_folder(model, data, args.out, "inq_cnn", verify_samples=args.verify_samples,
                     min_agreement=args.min_agreement)


if __name__ == "__main__":
    main()
