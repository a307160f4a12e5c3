"""The machine yardstick (bench/machine.py) does the same work on every run, so its seconds recorded
on different days can be compared: a change to its seeds or sizes shows here before it makes the
recorded values meaningless."""

from bench import machine


def test_the_yardstick_does_the_same_work_every_time() -> None:
    assert (machine._python_work(), machine._sqlite_work()) == (88945, 166116)
    assert (machine._python_work(), machine._sqlite_work()) == (88945, 166116)


def test_the_yardstick_reports_its_seconds_and_the_load() -> None:
    speed = machine.yardstick()
    assert speed["yardstick_s"] == round(speed["yardstick_python_s"] + speed["yardstick_sqlite_s"], 2)
    assert 0 < speed["yardstick_python_s"] < 60 and 0 < speed["yardstick_sqlite_s"] < 60
    assert speed["cores"] >= 1 and speed["load_1m"] >= 0
