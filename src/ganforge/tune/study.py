"""Where a study is stored and how its workers share it: every trial number run once, none lost.

The study lives in an Optuna RDB storage: by default a SQLite file in the study folder
(``sqlite:///STUDY_DIR/study.db``: nothing to start, and ``optuna-dashboard`` reads it as it
is), or any ``--storage`` URL Optuna accepts (PostgreSQL, MySQL) shared by the same command on
several machines. The study remembers what it was made for (:meth:`TuneJob.identity`); a command
asking another preset, metric, direction, budget, seed count or grid of it is refused.

**Claiming a trial** happens under a lock the workers share (:data:`LOCKS`: a file lock beside
the SQLite file, a PostgreSQL advisory lock, a MySQL named lock): count the study's trials, and
ask for a new one only while fewer than N exist. Counting and creating in one critical section
is what keeps two workers from both taking the last slot, so the study ends with exactly N.

**A trial whose worker went away** is not lost: a worker interrupted by a signal fails its trial
and queues its parameters again (:func:`retry`) before it exits; a worker killed outright
stops its heartbeat (every :data:`HEARTBEAT_S` s during a trial), and the next claim — on any
machine, or the same command run again — fails the trial once the heartbeat is
:data:`GRACE_S` s old (at once when the dead process was on this machine) and queues it again.
A queued retry takes its original's slot (:data:`RETRY_OF`), so it does not count twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Optional

import optuna
from optuna.trial import FrozenTrial, TrialState

from ganforge.errors import ConfigError
from ganforge.tune.job import TuneJob, hide_password
from ganforge.tune.pruning import PRUNERS
from ganforge.tune.samplers import SAMPLERS

try:
    import fcntl
except ImportError:  # Windows: one process at a time (the command refuses --workers there)
    fcntl = None  # type: ignore[assignment]

HEARTBEAT_S = 20  # a running trial's worker says it is alive this often
GRACE_S = 120  # a trial silent this long (its worker killed) is failed and queued again
# The study's user attributes.
IDENTITY = "ganforge"  # what it was made for (TuneJob.identity)
COMMAND = "command"  # the command that made it
VERIFY = "verify"  # the last --verify (verify.py)
# A trial's user attributes.
WORKER = "worker"  # "host:pid" of the process running it
SEARCHED = "overrides"  # its values as --set overrides
FIXED = "fixed"  # the --set overrides every run of it had
VALUES = "values"  # each seed's score, in seed order
REASON = "reason"  # why it was pruned or failed
RETRY_OF = "ganforge:retry_of"  # a queued retry's system attribute: the trial it replaces
GRID_ATTRS = ("grid_id", "search_space")  # Optuna's GridSampler: a trial's combination


# ------------------------------------------------------------------------- the claim lock
@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (made if missing) between processes of this machine
    (none where there is no ``fcntl``: there one process runs a study)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:  # released when the file closes, however the block ends
        if fcntl is not None:
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _sqlite_lock(url: str, name: str) -> ContextManager[None]:
    database = _url(url).database
    if not database or database == ":memory:":
        raise ConfigError(f"--storage {url}: an in-memory SQLite study cannot be shared or "
                          "resumed; give a file, sqlite:///PATH/study.db")
    return file_lock(Path(database).with_name(Path(database).name + ".lock"))


@contextlib.contextmanager
def _server_lock(url: str, name: str, take: str, give: str) -> Iterator[None]:
    import sqlalchemy
    import sqlalchemy.exc
    from sqlalchemy.pool import NullPool

    digest = hashlib.sha256(f"ganforge-tune:{name}".encode()).digest()
    key = {"key": int.from_bytes(digest[:8], "big", signed=True),
           "name": "ganforge-tune:" + digest.hex()[:40]}
    try:
        engine = sqlalchemy.create_engine(engine_url(url), poolclass=NullPool)
        conn = engine.connect()
        conn.execute(sqlalchemy.text(take), key)
    except (ImportError, sqlalchemy.exc.SQLAlchemyError) as err:
        raise storage_error(url, err) from None
    try:
        yield
    finally:
        conn.execute(sqlalchemy.text(give), key)
        conn.commit()
        conn.close()
        engine.dispose()


LOCKS: dict[str, Callable[[str, str], ContextManager[None]]] = {
    "sqlite": _sqlite_lock,
    "postgresql": lambda url, name: _server_lock(
        url, name, "SELECT pg_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)"),
    "mysql": lambda url, name: _server_lock(
        url, name, "SELECT GET_LOCK(:name, -1)", "SELECT RELEASE_LOCK(:name)"),
}


def _url(url: str) -> Any:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except ArgumentError:
        raise ConfigError(f"--storage {url!r} is not a database URL; write e.g. "
                          "postgresql://user:password@host/db or sqlite:///study.db") from None


# The drivers a URL without one (postgresql://) may use, in order: SQLAlchemy's default
# differs between versions (psycopg2 before 2.1, psycopg 3 since), the one installed serves.
DRIVERS = {"postgresql": ("psycopg2", "psycopg"), "mysql": ("mysqldb", "pymysql")}


def engine_url(url: str) -> str:
    """``url`` with a driver that is installed, when it names none."""
    parsed = _url(url)
    if parsed.drivername not in DRIVERS:  # SQLite, or a driver the user chose
        return url
    for driver in (None, *DRIVERS[parsed.drivername]):
        candidate = parsed if driver is None else parsed.set(
            drivername=f"{parsed.drivername}+{driver}")
        try:
            candidate.get_dialect().import_dbapi()
        except ImportError:
            continue
        return candidate.render_as_string(hide_password=False)
    return url  # none installed: opening it names the missing module


def storage_error(url: str, err: BaseException) -> ConfigError:
    """The one line for a storage that cannot be opened (no driver, no server, refused)."""
    return ConfigError(f"cannot open the study storage {hide_password(url)} "
                       f"({type(err).__name__}: {' '.join(str(err).split())[:300]}); check "
                       "the URL and that its server is up")


def claim_lock(job: TuneJob) -> ContextManager[None]:
    """The lock every worker of ``job``'s study claims trials under."""
    backend = _url(job.storage).get_backend_name()
    if backend not in LOCKS:
        raise ConfigError(f"--storage {hide_password(job.storage)}: tune shares a study through "
                          f"{', '.join(LOCKS)}; give one of those")
    return LOCKS[backend](job.storage, job.study_name)


# ------------------------------------------------------------------------- the study
def retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue ``trial``'s parameters again as a new trial that takes its slot (its worker went
    away: a signal, a kill, a lost machine). A grid's trial keeps its combination's number, so
    the grid neither counts the retry as another combination nor draws one for it."""
    grid = {key: trial.system_attrs[key] for key in GRID_ATTRS if key in trial.system_attrs}
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        system_attrs={RETRY_OF: trial.number, **grid}))


def quiet_optuna() -> None:
    """Optuna's console chatter off: its warnings about heartbeats outside ``Study.optimize``
    (this module drives them itself) and its line per trial (``tune`` prints its own)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")


def storage_of(job: TuneJob) -> optuna.storages.RDBStorage:
    """The job's storage, with heartbeats and the retry of stale trials."""
    from sqlalchemy.exc import SQLAlchemyError

    backend = _url(job.storage).get_backend_name()
    # SQLite serialises writers: a worker waits for another's write instead of failing.
    engine = {"connect_args": {"timeout": 300}} if backend == "sqlite" else {"pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(
            engine_url(job.storage), engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S, heartbeat_stale_trial_callback=retry)
    except (ImportError, SQLAlchemyError) as err:
        raise storage_error(job.storage, err) from None


def open_study(job: TuneJob) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    """The job's study (made when new), checked against what it was made for.

    Raises:
        ConfigError: the storage cannot be opened, or holds a study of that name made for
            something else (one line naming what differs).
    """
    quiet_optuna()
    with claim_lock(job):  # tables and the study are made once, whoever comes first
        storage = storage_of(job)
        pruner = PRUNERS[job.pruner].make(job)
        sampler = SAMPLERS[job.sampler].make(job)  # a process's own: Optuna stores none
        names = optuna.study.get_all_study_names(storage)
        if job.study_name not in names:
            study = optuna.create_study(storage=storage, study_name=job.study_name,
                                        direction=job.direction, pruner=pruner, sampler=sampler)
            study.set_user_attr(IDENTITY, job.identity())
            study.set_user_attr(COMMAND, job.command())
            return study, storage
        study = optuna.load_study(study_name=job.study_name, storage=storage, pruner=pruner,
                                  sampler=sampler)
    _check_identity(job, study.user_attrs.get(IDENTITY))
    return study, storage


def _check_identity(job: TuneJob, stored: Optional[dict[str, Any]]) -> None:
    where = f"study '{job.study_name}' in {hide_password(job.storage)}"
    if not isinstance(stored, dict):
        raise ConfigError(f"{where} was not made by ganforge tune; give another --study-name "
                          "or --out")
    wanted = job.identity()
    differ = [key for key in wanted if stored.get(key) != wanted[key]]
    if differ:
        made = ", ".join(f"{k} {_show(k, stored.get(k))}" for k in differ)
        asked = ", ".join(f"{k} {_show(k, wanted[k])}" for k in differ)
        raise ConfigError(f"{where} was made for {made}, not {asked}; give another --out (or "
                          "--study-name), or the study's own settings")


def _show(key: str, value: Any) -> str:
    if key == "grid":  # {key: [values]}, or none (a study of another sampler)
        return "; ".join(f"{k}={','.join(map(str, v))}" for k, v in (value or {}).items()) or \
            "none (another --sampler)"
    if isinstance(value, dict):  # a budget
        return " / ".join(f"{v:g} {k}" for k, v in value.items() if v is not None)
    return str(value)


# ------------------------------------------------------------------------- claiming trials
def slots_taken(trials: list[FrozenTrial]) -> int:
    """Trials that count towards N: all of them, a queued retry in place of its original."""
    return len(trials) - sum(RETRY_OF in t.system_attrs for t in trials)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(job: TuneJob, study: optuna.Study) -> Optional[optuna.Trial]:
    """The next trial for this worker: a queued one, else a new one while the study holds fewer
    than ``job.trials``; None when there is nothing left to run."""
    with claim_lock(job):
        optuna.storages.fail_stale_trials(study)
        _fail_dead_here(study)
        trials = study.get_trials(deepcopy=False)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if not waiting and slots_taken(trials) >= job.trials:
            return None
        trial = study.ask()
        trial.set_user_attr(WORKER, worker_id())
        return trial


def _fail_dead_here(study: optuna.Study) -> None:
    """Fail and queue again the running trials of processes on this machine that are gone
    (killed outright): no need to wait for their heartbeat to age."""
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        name, _, pid = str(trial.user_attrs.get(WORKER, "")).rpartition(":")
        if name != host or not pid.isdigit() or _alive(int(pid)):
            continue
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        retry(study, trial)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Heartbeat:
    """Tells the storage every :data:`HEARTBEAT_S` seconds that ``trial``'s worker is alive
    (a thread, while the trial runs)."""

    def __init__(self, storage: optuna.storages.RDBStorage, trial: optuna.Trial) -> None:
        # Optuna keeps the storage's id of a trial private; its own heartbeat reads it too.
        self.storage, self.trial_id = storage, trial._trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name="ganforge-tune-heartbeat")

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self.storage.record_heartbeat(self.trial_id)

    def __enter__(self) -> "Heartbeat":
        self.storage.record_heartbeat(self.trial_id)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def best_trial(study: optuna.Study) -> Optional[FrozenTrial]:
    """The best completed trial, or None before one completed."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial
