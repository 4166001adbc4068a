"""Command line of the course: `python -m gancourse run|exercises|grade|lessons`.

Exit status: 0 success; 1 the work ran but did not succeed (a lesson failed, exercises are
stale); 2 the request itself was wrong (unknown lesson, missing folder, bad option).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gancourse import course

OK, FAILED, USAGE = 0, 1, 2


class UsageError(Exception):
    """The command line asked for something impossible; the message says what to change."""


def _root(args: argparse.Namespace) -> Path:
    return Path(args.root).resolve() if args.root else course.find_root()


def cmd_run(args: argparse.Namespace) -> int:
    """Run the named lessons (default: all) and print the summary table."""
    root = _root(args)
    selected = [course.resolve(spec, root) for spec in args.lessons] if args.lessons else None
    runs = course.run_course(selected, root=root, out_dir=args.out, smoke=True if args.smoke else None,
                             timeout=args.timeout)
    return OK if all(run.ok for run in runs) else FAILED


def cmd_exercises(args: argparse.Namespace) -> int:
    """Regenerate exercises/ from solutions/, or with --check list what is out of date."""
    from gancourse.exercises import build_exercises, stale_exercises

    root = _root(args)
    solutions, exercises = root / "solutions", root / "exercises"
    if args.check:
        problems = stale_exercises(solutions, exercises)
        for problem in problems:
            print(problem)
        if not problems:
            count = len(list(solutions.glob("*.ipynb")))
            print(f"exercises/ is up to date with solutions/ ({count} notebook{'' if count == 1 else 's'})")
        return FAILED if problems else OK
    for path in build_exercises(solutions, exercises):
        print(path.relative_to(root) if path.is_relative_to(root) else path)
    return OK


def add_grade_options(parser: argparse.ArgumentParser, timeout: int) -> None:
    """The options of a grading run, shared by `python -m gancourse grade` and `python -m gancourse.grading`."""
    parser.add_argument("lesson", help='the lesson: "1", "01_gan_game" or a path to a solution notebook')
    parser.add_argument("submissions", help="folder of submissions: <student>/<lesson>.ipynb or <student>.ipynb")
    parser.add_argument("--out", default="grades.csv", help="CSV file to write (default grades.csv)")
    parser.add_argument("--timeout", type=int, default=timeout, help=f"seconds a single cell may run (default {timeout})")
    parser.add_argument("--workdir", default=None, help="keep nbgrader's course folder here (must be empty)")
    parser.add_argument("--feedback", default=None, help="write each student's graded notebook as HTML here")
    parser.add_argument("--jobs", type=int, default=1, help="students graded at once (default 1)")
    parser.add_argument("--regrade", action="store_true", help="grade every student again, changed or not")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", dest="smoke", action="store_const", const=True, default=None,
                      help="grade with the lessons' tiny budgets, no quality requirements (default: GANCOURSE_SMOKE)")
    mode.add_argument("--full", dest="smoke", action="store_const", const=False,
                      help="grade with the lessons' full budgets and quality requirements")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run students' code without the bubblewrap sandbox, as you: it can then read the "
                             "hidden tests and your files and change the gradebook. Only for code you trust.")


def cmd_grade(args: argparse.Namespace) -> int:
    """Autograde a folder of submissions for one lesson and write the CSV."""
    from gancourse.grading import grade_from_options

    if args.timeout <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout}.")
    submissions = Path(args.submissions)
    if not submissions.is_dir():
        raise UsageError(f"submissions folder {submissions} does not exist; pass the folder of student notebooks.")
    rows = grade_from_options(args, _root(args) / "solutions")
    for row in rows:
        note = f"  ({row['note']})" if row.get("note") else ""
        print(f"{row['student']}: {row['total']:g}/{row['max']:g}{note}")
    print(f"wrote {args.out} ({len(rows)} students)")
    return OK


def cmd_lessons(args: argparse.Namespace) -> int:
    """List the lessons with their titles and which of their three notebooks exist."""
    root = _root(args)
    found = course.lessons(root)
    if not found:
        print(f"no lessons in {root / 'notebooks'}", file=sys.stderr)
        return FAILED
    for lesson in found:
        extras = [kind for kind, path in (("solution", lesson.solution), ("exercise", lesson.exercise)) if path.is_file()]
        print(f"{lesson.number:>2}  {lesson.stem:<24} {lesson.title}" + (f"  [{', '.join(extras)}]" if extras else ""))
    return OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gancourse", description="Run, grade and maintain the GAN course.")
    parser.add_argument("--root", default=None, help="the course folder (default: found from the current folder)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="execute lessons with papermill and print each verdict")
    run.add_argument("lessons", nargs="*", metavar="LESSON", help='"1", "01_gan_game", a name or a notebook path (default: all)')
    run.add_argument("--smoke", action="store_true", help="tiny budgets (sets GANCOURSE_SMOKE=1), as the tests do")
    run.add_argument("--out", default="runs", help="folder for executed notebooks and figures (default runs)")
    run.add_argument("--timeout", type=float, default=None, help="seconds any one cell may run (default: no limit)")
    run.set_defaults(func=cmd_run)

    ex = sub.add_parser("exercises", help="generate exercises/ from solutions/")
    ex.add_argument("--check", action="store_true", help="only report stale exercises (exit 1 if any)")
    ex.set_defaults(func=cmd_exercises)

    gr = sub.add_parser("grade", help="autograde a folder of student notebooks into a CSV")
    add_grade_options(gr, timeout=300)  # 300 s: full-budget training cells take minutes on a laptop CPU
    gr.set_defaults(func=cmd_grade)

    ls = sub.add_parser("lessons", help="list the lessons")
    ls.set_defaults(func=cmd_lessons)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv[1:]), run the command, return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return USAGE
    try:
        return args.func(args)
    except (UsageError, course.UnknownLessonError, course.CourseRootNotFound) as err:
        print(f"error: {err}", file=sys.stderr)
        return USAGE
    except Exception as err:
        # The helpers' own errors name the problem and the fix; show them without a traceback.
        known = _user_errors()
        if isinstance(err, known):
            print(f"error: {err}", file=sys.stderr)
            return USAGE
        raise


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "the input was wrong", not "gancourse has a bug"."""
    errors: list[type[BaseException]] = [FileNotFoundError, NotADirectoryError]
    for module, name in (("gancourse.grading", "GradingError"), ("gancourse.exercises", "ExerciseBuildError")):
        loaded = sys.modules.get(module)
        if loaded is not None and hasattr(loaded, name):
            errors.append(getattr(loaded, name))
    return tuple(errors)


if __name__ == "__main__":
    sys.exit(main())
