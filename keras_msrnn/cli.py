"""The `keras-msrnn` command."""

import argparse
import sys


def _parser():
    parser = argparse.ArgumentParser(
        prog="keras-msrnn",
        description="Multi-scale recurrent spatiotemporal prediction (MS-RNN) for Keras 3.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    from keras_msrnn import bench

    bench_parser = commands.add_parser(
        "bench",
        help="time and memory of a training step, plain vs multi-scale stack",
        description=bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_arguments(bench_parser)
    bench_parser.set_defaults(handler=bench.run)
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, RuntimeError) as error:
        print(f"keras-msrnn {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
