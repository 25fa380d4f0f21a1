"""Coverage-guided fuzzing of a reader with atheris (libFuzzer):

    python -m tests.fuzz.run FORMAT [--seconds N] [--corpus DIR] [--findings DIR]

starts from the format's real seeds (samples/ and ../shared/fixtures) and reports a crash (an
exception escaping the reader, a record the stage could not store) or a hang (an input that
takes longer than --timeout seconds) as a failure, with the input saved under --findings.
`make fuzz` runs every format for ten minutes each.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["pipelines", "filters"]):
    import pipelines.sources  # noqa: F401  (the readers, instrumented for coverage)
    import pipelines.stages.extract  # noqa: F401

from tests.fuzz.targets import FORMATS, check, encode, seed_corpus, temporary_workdir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("format", choices=sorted(FORMATS))
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--corpus", help="corpus folder (kept between runs); default: a new one")
    parser.add_argument("--findings", default="build/fuzz", help="where failing inputs go")
    parser.add_argument("--timeout", type=int, default=60, help="seconds one input may take")
    parser.add_argument("--max-len", type=int, default=1 << 20)
    args, libfuzzer = parser.parse_known_args()
    fmt = FORMATS[args.format]
    corpus = args.corpus or tempfile.mkdtemp(prefix=f"fuzz-{fmt.name}-")
    seeds = seed_corpus(fmt, corpus)
    findings = os.path.join(args.findings, fmt.name)
    os.makedirs(findings, exist_ok=True)
    workdir = temporary_workdir()
    print(f"fuzzing {fmt.name}: {seeds} seeds, corpus {corpus}, findings {findings}", flush=True)

    def one_input(data: bytes) -> None:
        check(fmt, encode(fmt, data), workdir)

    atheris.Setup(
        [
            sys.argv[0],
            corpus,
            f"-max_total_time={args.seconds}",
            f"-timeout={args.timeout}",
            f"-max_len={args.max_len}",
            "-rss_limit_mb=4096",
            f"-artifact_prefix={findings}/",
            "-print_final_stats=1",
            *libfuzzer,
        ],
        one_input,
    )
    atheris.Fuzz()


if __name__ == "__main__":
    main()
