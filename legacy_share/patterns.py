"""User regexes (--group, --rename, --exclude), matched with a time limit.

Python's `re` backtracks without bound: `(a+)+$` against a long name does not finish. The
`regex` package takes the same syntax and stops a match after a timeout; each compiled
pattern gets `TIME_LIMIT` seconds of matching in all, for the plan it was compiled for.
"""

import re
import time

import regex

from legacy_share.errors import PlanError

__all__ = ["TIME_LIMIT", "BoundedPattern", "compile_pattern", "compile_rename"]

TIME_LIMIT = 2.0  # seconds of matching per pattern and plan; names are short, 1 ms is typical


class BoundedPattern:
    """A compiled regex whose matches together may take `limit` seconds, then raise PlanError.

    Offers what the planner uses of `re.Pattern`: `pattern`, `groups`, `groupindex`,
    `fullmatch`, `match`, `search` (the match objects behave as `re`'s).
    """

    def __init__(self, pattern, what, limit=TIME_LIMIT):
        flags = 0
        if isinstance(pattern, re.Pattern):
            pattern, flags = pattern.pattern, pattern.flags & ~re.UNICODE
        try:
            self._regex = regex.compile(pattern, flags | regex.VERSION0)
        except (regex.error, TypeError, ValueError) as exc:
            raise PlanError(f"{what} regex {pattern!r} is invalid: {exc}") from None
        self.pattern = pattern
        self.what = what
        self.limit = limit
        self.groups = self._regex.groups
        self.groupindex = dict(self._regex.groupindex)
        self._left = limit

    def fullmatch(self, string):
        return self._run(self._regex.fullmatch, string)

    def match(self, string):
        return self._run(self._regex.match, string)

    def search(self, string):
        return self._run(self._regex.search, string)

    def _run(self, method, string):
        start = time.monotonic()
        try:
            if self._left <= 0:
                raise TimeoutError
            return method(string, timeout=self._left)
        except TimeoutError:
            raise PlanError(  # pylint: disable=raise-missing-from
                f"{self.what} regex {self.pattern!r} took more than {self.limit:g} s on names "
                f"such as {string[:80]!r}; it backtracks without end (nested repeats such as "
                f"(a+)+), write it without them.")
        finally:
            self._left -= time.monotonic() - start


def compile_pattern(pattern, what):
    """`pattern` (str or re.Pattern) compiled -> BoundedPattern; PlanError naming it if invalid.

    `what` names the option in messages ("group pattern", "rename", "exclude").
    """
    return BoundedPattern(pattern, what)


def compile_rename(old, new):
    """A --rename OLD=NEW rule -> (BoundedPattern of `old`, `new`).

    Raises PlanError if `old` is invalid or the template `new` refers to a group `old` lacks
    (`\\1`, `\\g<x>`), which `re` would only find when a name matches.
    """
    compiled = compile_pattern(old, "rename")
    new = str(new)
    names = {index: name for name, index in compiled.groupindex.items()}
    try:  # a pattern with the same groups, all empty, matches "": expand checks the template
        dummy = re.compile("".join(f"(?P<{names[k]}>)" if k in names else "()"
                                   for k in range(1, compiled.groups + 1)))
        dummy.match("").expand(new)
    except (re.error, IndexError) as exc:
        raise PlanError(f"rename {compiled.pattern!r}={new!r}: the replacement is invalid "
                        f"({exc}); refer only to groups of the pattern, as \\1 or \\g<name>, "
                        f"and write a backslash as \\\\.") from None
    return compiled, new
