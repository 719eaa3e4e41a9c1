"""``mlops-pack``: one command for any pipeline spec (docs/tutorial.md).

    mlops-pack check my_pipelines/wine.yaml      # load and explain: DAGs, assets, schedules, every default
    mlops-pack run my_pipelines/ --serve         # its own Airflow + MLflow, drive the loop to a first champion
    mlops-pack ingest wine --home mlops_home     # new data is up: ingest it on the running Airflow and wait
    mlops-pack ui --home mlops_home              # Airflow UI and MLflow UI on an existing home
    mlops-pack spec-docs                         # rewrite the field reference of docs/spec.md from the model
    mlops-pack reproduce wine 3 --home mlops_home  # re-train version 3 from its records; exit 1 unless identical
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

PREFIX = "[mlops-pack]"


def say(message: str) -> None:
    print(f"{PREFIX} {message}", flush=True)


def find_specs(target: Path) -> dict[str, Path]:
    """name -> spec path for a spec file or every spec in a folder; SystemExit naming what is wrong."""
    from mlops_pack import settings
    from mlops_pack.core.spec import SpecError, load_spec

    target = target.resolve()
    if target.is_dir():
        files = sorted([*target.glob("*.yaml"), *target.glob("*.yml")])
    elif target.suffix in (".yaml", ".yml") and target.exists():
        files = [target]
    else:
        raise SystemExit(f"{PREFIX} {target}: not a pipeline spec (.yaml) or a folder of specs")
    if not files:
        raise SystemExit(f"{PREFIX} {target}: no *.yaml pipeline spec in this folder")
    specs, errors = {}, []
    for path in files:
        try:
            specs[load_spec(path, settings.allowed_model_modules()).name] = path
        except SpecError as exc:
            errors.append(str(exc))
    if errors:
        raise SystemExit("\n".join(errors))
    return specs


def cmd_check(args: argparse.Namespace) -> int:
    from mlops_pack.cli.explain import explain
    from mlops_pack.core.spec import SpecError

    status = 0
    for path in args.specs:
        try:
            print(explain(path))
        except SpecError as exc:
            print(exc, file=sys.stderr)
            status = 1
        print()
    return status


def _stop_on_sigterm() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _airflow_for(home: Path, specs: dict[str, Path], spec_dir: Path, args: argparse.Namespace) -> Any:
    from mlops_pack import settings
    from mlops_pack.cli import runner
    from mlops_pack.core.spec import load_spec

    fresh = not (home / "airflow.db").exists()
    ports = runner.Ports(args.port_range)
    api_port = runner.api_port(ports, args.api_port)
    airflow_login = runner.write_config(home, api_port, spec_dir, dags_folder=runner.write_dag_files(home, specs),
                                        ports=ports, users=args.user, local_mode=args.no_login)
    loaded = [load_spec(p, settings.allowed_model_modules()) for p in specs.values()]
    needs_triggerer = any(s.schedule.wait_for_change or s.promotion.require_approval for s in loaded)
    airflow = runner.Airflow(home, api_port, list(specs), triggerer=needs_triggerer)
    airflow.home_login = airflow_login
    if fresh:
        say(f"new Airflow home {home}: migrating its metadata DB (SQLite) and MLflow store ...")
    mlflow_init = runner.init_mlflow(home, wait=False)  # both stores at once: each takes a while
    airflow.migrate()
    runner.finish_init(mlflow_init)
    runner.save_runner_state(home, api_port=api_port, api_url=airflow.url, pipelines=sorted(specs),
                             specs={k: str(v) for k, v in specs.items()}, pipelines_dir=str(spec_dir))
    return airflow


def cmd_run(args: argparse.Namespace) -> int:
    from mlops_pack.cli import runner

    started = time.monotonic()
    specs = find_specs(args.target)
    spec_dir = args.target.resolve() if args.target.is_dir() else args.target.resolve().parent
    home = args.home.resolve()
    if args.fresh and home.exists():
        shutil.rmtree(home)
    airflow = _airflow_for(home, specs, spec_dir, args)
    _stop_on_sigterm()
    airflow.start()
    try:
        airflow.wait_ready(timeout=args.timeout)
        say(f"Airflow is up after {time.monotonic() - started:.0f}s: {airflow.url}; pipelines {', '.join(specs)}")
        _say_login(airflow.home_login, airflow.url)
        had = {n for n in specs if runner.champion(home, n)}
        for name in sorted(had):
            say(f"{name}: champion v{runner.champion(home, name)} already (--ingest always ingests it again)")
        need = [n for n in specs if args.ingest == "always" or (args.ingest == "auto" and n not in had)]
        for name in need:
            say(f"{name}: triggered {name}__ingest run {airflow.trigger(f'{name}__ingest')}")
        status = _wait_for_champions(airflow, home, [n for n in specs if n not in had], started, args.timeout)
        if status == 0 and args.until == "quiet":
            airflow.wait_quiet(args.timeout)
        for name in specs:
            runner.print_summary(runner.collect_summary(airflow, home, name))
        say(f"home {home}; open the UIs later with: mlops-pack ui --home {home}")
        if args.serve and status == 0:
            say(f"serving {airflow.url} until Ctrl-C (new data: mlops-pack ingest <pipeline> --home {home})")
            while True:
                airflow.check_alive()
                time.sleep(2)
        return status
    except KeyboardInterrupt:
        say("stopping Airflow")
        return 0
    finally:
        airflow.stop()


def _say_login(login: Any, url: str) -> None:
    """Where and as whom to log in (a new password shown this once; the home's passwords file keeps it)."""
    for line in login.describe(url):
        say(line)


def _wait_for_champions(airflow: Any, home: Path, pipelines: list[str], started: float, timeout: float) -> int:
    """0 once every pipeline has a champion; 1 (after naming failed runs and tasks) when the loop went quiet
    or failed without one."""
    from mlops_pack.cli import runner

    deadline, waiting, quiet_since = time.monotonic() + timeout, set(pipelines), None
    while waiting and time.monotonic() < deadline:
        for name in sorted(waiting):
            version = runner.champion(home, name)
            if version:
                say(f"{name}: first champion v{version} after {time.monotonic() - started:.0f}s")
                waiting.discard(name)
        busy = airflow.busy()
        quiet_since = None if busy else quiet_since or time.monotonic()
        if waiting and quiet_since and time.monotonic() - quiet_since > 15:
            break
        airflow.check_alive()
        time.sleep(3)
    for name in sorted(waiting):
        _explain_no_champion(airflow, home, name)
    return 1 if waiting else 0


def _explain_no_champion(airflow: Any, home: Path, name: str) -> None:
    """Which runs and tasks failed, and what the gate said of each version."""
    from mlops_pack.cli import runner

    say(f"{name}: no champion yet")
    for dag_id in airflow.pipeline_dags([name]):
        for run in airflow.runs(dag_id):
            if run["state"] == "failed":
                _say_failed_run(airflow, home, dag_id, run["dag_run_id"])
    for v in runner.collect_summary(airflow, home, name)["model_versions"]:
        say(f"  version {v['version']}: {v['decision']}: {v['reason']}")


def _say_failed_run(airflow: Any, home: Path, dag_id: str, run_id: str) -> None:
    """The failed run, its failed tasks and what each said (the error lines of its last attempt)."""
    from mlops_pack.cli.task_logs import task_errors

    tasks = airflow.failed_tasks(dag_id, run_id)
    say(f"  {dag_id} run {run_id} failed in {tasks}; logs under {home / 'logs' / f'dag_id={dag_id}'}")
    for task_id in tasks:
        for line in task_errors(home / "logs", dag_id, run_id, task_id):
            say(f"    {task_id}: {line[:500]}")


def cmd_ingest(args: argparse.Namespace) -> int:
    """Trigger ingest of pipelines on a running `mlops-pack run --serve` and wait until the loop settles."""
    from mlops_pack.cli import runner

    home = args.home.resolve()
    state = runner.load_runner_state(home)
    unknown = sorted(set(args.pipelines) - set(state["pipelines"]))
    if unknown:
        raise SystemExit(f"{PREFIX} unknown pipeline(s) {unknown}; this home runs {state['pipelines']}")
    airflow = runner.Airflow(home, state["api_port"], args.pipelines)
    try:
        airflow.wait_ready(timeout=30)
    except (TimeoutError, RuntimeError) as exc:
        raise SystemExit(f"{PREFIX} no Airflow answers at {airflow.url}: start it with "
                         f"`mlops-pack run {state['pipelines_dir']} --home {home} --serve` ({exc})") from None
    for name in args.pipelines:
        conf = {"partition": args.partition} if args.partition else {}
        say(f"{name}: triggered {name}__ingest run {airflow.trigger(f'{name}__ingest', conf)}")
    if args.wait:
        import httpx

        try:
            airflow.wait_quiet(args.timeout)
            for name in args.pipelines:
                runner.print_summary(runner.collect_summary(airflow, home, name))
        except httpx.HTTPError as exc:
            raise SystemExit(f"{PREFIX} Airflow at {airflow.url} stopped answering ({exc}): was `mlops-pack run "
                             "--serve` stopped?") from None
        failed = [(r["dag_id"], r["run_id"]) for name in args.pipelines
                  for r in runner.collect_summary(airflow, home, name)["runs"] if r["state"] == "failed"]
        for dag_id, run_id in failed:
            _say_failed_run(airflow, home, dag_id, run_id)
        if failed:
            return 1
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """Airflow (api-server, scheduler, dag-processor) and the MLflow UI on an existing home, until Ctrl-C."""
    import subprocess

    from mlops_pack.cli import runner

    home = args.home.resolve()
    state = runner.load_runner_state(home)
    # The home's own ports unless told otherwise; links are paths and MLflow links redirect to the MLflow
    # UI configured now, so pages and links of earlier runs follow the move.
    ports = runner.Ports(args.port_range)
    api_port = runner.api_port(ports, args.api_port or (None if ports.span else state["api_port"]))
    mlflow_port = ports.take("the MLflow UI", args.mlflow_port)
    mlflow_url = f"http://127.0.0.1:{mlflow_port}"
    login = runner.write_config(home, api_port, Path(state["pipelines_dir"]), dags_folder=home / "dags", ports=ports,
                                mlflow_ui_url=mlflow_url, users=args.user, local_mode=args.no_login)
    runner.save_runner_state(home, **{**state, "api_port": api_port, "api_url": f"http://127.0.0.1:{api_port}",
                                      "mlflow_ui_url": mlflow_url})
    airflow = runner.Airflow(home, api_port, state["pipelines"])
    mlflow_ui = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", runner.tracking_uri(home),
         "--default-artifact-root", f"file://{home / 'mlartifacts'}", "--host", "127.0.0.1", "-p", str(mlflow_port),
         "--workers", "1"],
        stdout=(home / "logs" / "mlflow-ui.out").open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**runner.caller_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # a UI: no job runner
    _stop_on_sigterm()
    airflow.start()
    try:
        airflow.wait_ready()
        say(f"Airflow UI {airflow.url} (Browse > Model health), MLflow UI {mlflow_url}; Ctrl-C stops both")
        _say_login(login, airflow.url)
        while True:
            airflow.check_alive()
            time.sleep(2)
    except KeyboardInterrupt:
        return 0
    finally:
        airflow.stop()
        _stop_group(mlflow_ui)


def _stop_group(proc: Any) -> None:
    """Stop a process started in a session of its own and everything in it (``mlflow ui``'s uvicorn
    workers outlive their parent otherwise)."""
    import os
    import subprocess

    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Re-train a registered version from what its training recorded; 0 only when reproduced bit for bit."""
    import json
    import os

    home = args.home
    if home is None and "AIRFLOW_HOME" not in os.environ and (Path("mlops_home") / "airflow.cfg").exists():
        home = Path("mlops_home")  # what `mlops-pack run` made here
    if home is not None:  # before anything imports Airflow: its configuration is the home's
        home = home.resolve()
        if not (home / "airflow.cfg").exists():
            raise SystemExit(f"{PREFIX} {home} is not an Airflow home (no airflow.cfg): run `mlops-pack run` first")
        os.environ["AIRFLOW_HOME"] = str(home)
    from mlops_pack.cli.reproduce import ReproduceError, reproduce
    from mlops_pack.core.reproduce import render_text

    try:
        report = reproduce(args.pipeline, args.version)
    except ReproduceError as exc:
        print(f"{PREFIX} {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    print(render_text(report))
    return 0 if report["reproduced"] else 1


def cmd_spec_docs(args: argparse.Namespace) -> int:
    from mlops_pack.cli.spec_docs import update

    changed = update(args.output, check=args.check)
    if args.check and changed:
        print(f"{args.output} is out of date with the spec model: run `mlops-pack spec-docs`", file=sys.stderr)
        return 1
    say(f"{args.output} {'updated' if changed else 'already up to date'}")
    return 0


def _port_range(text: str) -> range | None:
    from mlops_pack.cli.runner import PortRangeError, parse_port_range

    try:
        return parse_port_range(text)
    except PortRangeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _user(text: str) -> str:
    from mlops_pack.core.access import LoginError, parse_login

    try:
        return str(parse_login(text))
    except LoginError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _login_arguments(command: argparse.ArgumentParser) -> None:
    """--user and --no-login (docs/ui.md, "Logging in")."""
    command.add_argument("--user", action="append", type=_user, metavar="NAME:ROLE",
                         help="a user who may log in (role viewer, user, op or admin); repeat for more. Kept in "
                              "<home>/users.txt; default: the users there, else you (your OS login name) as admin")
    command.add_argument("--no-login", action="store_true",
                         help="local mode: no login at all, everyone on this machine is Airflow's anonymous admin "
                              "and decisions are recorded as 'Anonymous' (never remembered: say it each time)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlops-pack", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="load and explain pipeline specs")
    check.add_argument("specs", nargs="+", type=Path)
    check.set_defaults(func=cmd_check)

    run = sub.add_parser("run", help="bring up Airflow for a folder of specs and drive the loop to a champion")
    run.add_argument("target", type=Path, help="a folder of pipeline specs, or one spec")
    run.add_argument("--home", type=Path, default=Path("mlops_home"), help="Airflow home (default ./mlops_home)")
    run.add_argument("--api-port", type=int, default=0,
                     help="Airflow api-server port (default: AIRFLOW__API__PORT, else from --port-range or a free one)")
    run.add_argument("--port-range", metavar="START-END", type=_port_range,
                     help="every server of the home listens on 127.0.0.1 on a free port of this range")
    run.add_argument("--ingest", choices=("auto", "always", "never"), default="auto",
                     help="trigger ingest: auto = pipelines without a champion yet")
    run.add_argument("--until", choices=("champion", "quiet"), default="quiet",
                     help="return at the first champions, or once score and monitor have run too")
    run.add_argument("--timeout", type=float, default=900, help="seconds to wait for Airflow and for the loop")
    run.add_argument("--fresh", action="store_true", help="delete the home first")
    run.add_argument("--serve", action="store_true", help="keep Airflow running afterwards, until Ctrl-C")
    _login_arguments(run)
    run.set_defaults(func=cmd_run)

    ingest = sub.add_parser("ingest", help="trigger ingest on a running home (mlops-pack run --serve)")
    ingest.add_argument("pipelines", nargs="+")
    ingest.add_argument("--home", type=Path, default=Path("mlops_home"))
    ingest.add_argument("--partition", help="data key of this run (when the spec has no partition.column)")
    ingest.add_argument("--no-wait", dest="wait", action="store_false", help="return once triggered")
    ingest.add_argument("--timeout", type=float, default=900)
    ingest.set_defaults(func=cmd_ingest)

    ui = sub.add_parser("ui", help="Airflow UI and MLflow UI on an existing home")
    ui.add_argument("--home", type=Path, default=Path("mlops_home"))
    ui.add_argument("--api-port", type=int, default=0,
                    help="Airflow api-server port (default: AIRFLOW__API__PORT, else the home's, or from --port-range)")
    ui.add_argument("--mlflow-port", type=int, default=0, help="MLflow UI port (default: from --port-range or free)")
    ui.add_argument("--port-range", metavar="START-END", type=_port_range,
                    help="the api-server, MLflow UI and log servers listen on 127.0.0.1 on free ports of this range")
    _login_arguments(ui)
    ui.set_defaults(func=cmd_ui)

    again = sub.add_parser("reproduce", help="re-train a registered version from its records and compare, bit "
                           "for bit (exit 1 when not reproduced, 2 when it cannot be re-trained)")
    again.add_argument("pipeline")
    again.add_argument("version")
    again.add_argument("--home", type=Path, default=None,
                       help="an mlops-pack home (default: the Airflow configuration of the environment when "
                            "AIRFLOW_HOME is set, else ./mlops_home when it is one)")
    again.add_argument("--json", type=Path, metavar="FILE", help="also write the whole report to FILE as JSON")
    again.set_defaults(func=cmd_reproduce)

    docs = sub.add_parser("spec-docs", help="write the spec field reference in docs/spec.md from the model")
    docs.add_argument("--output", type=Path, default=Path("docs/spec.md"))
    docs.add_argument("--check", action="store_true", help="only check; exit 1 if the file is out of date")
    docs.set_defaults(func=cmd_spec_docs)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
