"""bench/collect.py, what `make bench` runs: every benchmark's output into bench/README.md, dated."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_collect", ROOT / "bench" / "collect.py")
collect = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(collect)


def test_each_benchmark_output_is_written_under_its_name_with_the_date(tmp_path: Path) -> None:
    (tmp_path / "bench_a.py").write_text("print('median 1.5 ms over 5 runs')\n")
    (tmp_path / "bench_b.py").write_text("print('10 requests')\n")
    (tmp_path / "helper.py").write_text("raise SystemExit(9)\n")  # not a benchmark: never run
    out = tmp_path / "README.md"
    assert collect.main(["--dir", str(tmp_path), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "Written by `make bench`" in text and f"on {datetime.now(UTC):%Y-%m-%d}" in text
    assert text.index("## `bench_a.py`") < text.index("median 1.5 ms over 5 runs") < text.index("## `bench_b.py`")
    assert "10 requests" in text


def test_a_failing_benchmark_leaves_the_figures_as_they_were(tmp_path: Path) -> None:
    (tmp_path / "bench_a.py").write_text("import sys; print('half'); sys.exit(3)\n")
    out = tmp_path / "README.md"
    out.write_text("published figures\n", encoding="utf-8")
    assert collect.main(["--dir", str(tmp_path), "--out", str(out)]) == 1
    assert out.read_text(encoding="utf-8") == "published figures\n"


def test_render_pins_the_instant_and_machine() -> None:
    text = collect.render([("bench_x.py", "3 ms\n")], datetime(2026, 12, 1, 20, 45, tzinfo=UTC), "2 cores")
    assert "on 2026-12-01 20:45 UTC, 2 cores." in text
    assert "## `bench_x.py`\n\n```text\n3 ms\n```" in text


def test_the_published_figures_say_where_they_come_from() -> None:
    text = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
    assert "make bench" in text.split("\n\n")[1]
    assert (ROOT / "README.md").read_text(encoding="utf-8").count("bench/README.md") >= 1
