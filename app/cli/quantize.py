"""`hearth quantize SOURCE --type T`: smaller copies in the library, with a quality report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.shared import CliError, ctrl_c, open_store, resolve_model


def add_parser(sub: argparse._SubParsersAction) -> None:
    quantize = sub.add_parser(
        "quantize", help="quantize a model to smaller types, with a quality report",
        description="Quantize a GGUF model to one or more types with llama.cpp, add the "
        "results to your library, and measure each one's perplexity and speed against the "
        "source. Ctrl+C stops it; the file in progress is removed.",
    )
    quantize.add_argument("source", metavar="SOURCE",
                          help="a .gguf path or a name (or part of one) from `hearth models`")
    quantize.add_argument("--type", dest="types", action="append", required=True,
                          metavar="TYPE", help="target type such as Q4_K_M; repeat for more")
    quantize.add_argument("--imatrix", type=Path, metavar="FILE",
                          help="importance matrix (enables IQ types, improves low-bit types)")
    quantize.add_argument("--out", type=Path, metavar="DIR",
                          help="output folder (default: Hearth's models folder)")
    quantize.add_argument("--threads", type=int, default=0, metavar="N",
                          help="threads (default: all)")
    quantize.add_argument("--allow-requantize", action="store_true",
                          help="quantize an already-quantized model (compounds its error)")
    quantize.add_argument("--overwrite", action="store_true",
                          help="replace outputs that already exist")
    quantize.add_argument("--no-report", action="store_true",
                          help="skip measuring perplexity and speed")
    quantize.add_argument("--windows", type=int, metavar="N",
                          help="perplexity windows to measure (default: the whole sample)")
    quantize.add_argument("--report", type=Path, metavar="FILE",
                          help="also write the report to FILE (.md or .csv)")
    quantize.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.engine.quantize.quality import (
        EvalProgress,
        EvaluateJob,
        QualityCancelled,
        eval_gpu_layers,
        to_csv,
        to_markdown,
    )
    from app.engine.quantize.quantize import (
        OutputExists,
        QuantizeError,
        QuantizeJob,
        QuantizeProgress,
        QuantizeRequest,
        RequantizeRefused,
        plan_quantize,
        predicted_info,
    )
    from app.engine.sizing.fit_verdict import FIT_CTX, estimated_fit
    from app.engine.sizing.hardware import probe_hardware
    from app.engine.sizing.memory_estimate import shape_of
    from app.engine.steps import drain
    from app.engine.units import human_bytes
    from app.services.quantized import evaluate_and_save, quantize_and_register

    with open_store() as store:
        try:
            source = Path(resolve_model(store, args.source))
            request = QuantizeRequest(
                source, tuple(args.types), out_dir=args.out, imatrix=args.imatrix,
                threads=args.threads, allow_requantize=args.allow_requantize,
                overwrite=args.overwrite,
            )
            print(f"Checking {source.name} and predicting sizes…", file=sys.stderr)
            plan = plan_quantize(request)
        except (CliError, QuantizeError) as exc:
            hint = {RequantizeRefused: " Add --allow-requantize to go ahead anyway.",
                    OutputExists: " Or add --overwrite to replace it."}.get(type(exc), "")
            print(f"hearth quantize: {exc}{hint}", file=sys.stderr)
            return 1
        if plan.warning:
            print(f"Warning: {plan.warning}", file=sys.stderr)
        # The same verdict the quantize dialog shows: as many layers on the GPU as fit.
        hardware = probe_hardware()
        gpus = hardware.gpus if hardware.gpu_offload_supported else []
        shape = shape_of(plan.source)
        n_ctx = min(FIT_CTX, plan.source.context_length or FIT_CTX)
        print(f"{'TYPE':<9} {'PREDICTED':>10}  {'FIT AT ' + str(n_ctx):<17} OUTPUT")
        for target in plan.targets:
            size = target.predicted_size
            fit = (estimated_fit(predicted_info(plan.source, size), shape,
                                 hardware.ram_available, gpus).verdict if size else "unknown")
            print(f"{target.quant.name:<9} {human_bytes(size) if size else '?':>10}  "
                  f"{fit:<17} {target.output}")

        def show(step: QuantizeProgress | EvalProgress) -> None:
            print(f"\r  {step.describe()}      ", end="", file=sys.stderr)

        job = QuantizeJob(plan)
        with ctrl_c(job.cancel):
            outcome = drain(quantize_and_register(job, store), show)
        print(file=sys.stderr)
        for output in outcome.files:
            print(f"Added {output.path} ({human_bytes(output.size)}, {output.seconds:.1f} s) "
                  "to your library.")
        if outcome.error is not None:
            print(f"hearth quantize: {outcome.error}", file=sys.stderr)
            return 1
        if args.no_report:
            return 0

        evaluation = EvaluateJob(source, [(o.type_name, o.path) for o in outcome.files],
                                 max_chunks=args.windows, threads=args.threads,
                                 gpu_layers=eval_gpu_layers(plan.source, gpus))
        with ctrl_c(evaluation.cancel):
            try:
                report = drain(evaluate_and_save(evaluation, store), show).report
            except QualityCancelled:
                print("\nQuality report skipped; the quantized files are kept.", file=sys.stderr)
                return 130
        print(file=sys.stderr)
        print(to_markdown(report))
        if args.report:
            text = to_csv(report) if args.report.suffix.lower() == ".csv" else to_markdown(report)
            args.report.write_text(text, encoding="utf-8")
            print(f"Report written to {args.report}")
    return 0
