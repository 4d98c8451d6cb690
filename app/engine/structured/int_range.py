"""A GBNF rule for the integers in a range: a port of llama.cpp's ``build_min_max_int``
(common/json-schema-to-grammar.cpp), which llama-cpp-python's Python converter lacks."""

from __future__ import annotations

from io import StringIO

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def int_range_rule(minimum: int | None, maximum: int | None) -> str:
    """GBNF matching exactly the decimal integers in [minimum, maximum] (None: unbounded)."""
    out = StringIO()
    _build(INT64_MIN if minimum is None else minimum,
           INT64_MAX if maximum is None else maximum, out)
    return out.getvalue()


def _build(min_value: int, max_value: int, out: StringIO, decimals_left: int = 16,
           top_level: bool = True) -> None:
    has_min = min_value != INT64_MIN
    has_max = max_value != INT64_MAX

    def digit_range(start: str, end: str) -> None:
        out.write("[" + (start if start == end else f"{start}-{end}") + "]")

    def more_digits(min_digits: int, max_digits: int | None) -> None:
        out.write("[0-9]")
        if min_digits == max_digits == 1:
            return
        out.write("{" + str(min_digits))
        if max_digits != min_digits:
            out.write(",")
            if max_digits is not None:
                out.write(str(max_digits))
        out.write("}")

    def uniform_range(start: str, end: str) -> None:
        i = 0
        while i < len(start) and i < len(end) and start[i] == end[i]:
            i += 1
        if i > 0:
            out.write(f'"{start[:i]}"')
        if i < len(start) and i < len(end):
            if i > 0:
                out.write(" ")
            sub_len = len(start) - i - 1
            if sub_len > 0:
                from_sub, to_sub = start[i + 1:], end[i + 1:]
                sub_zeros, sub_nines = "0" * sub_len, "9" * sub_len
                to_reached = False
                out.write("(")
                if from_sub == sub_zeros:
                    digit_range(start[i], chr(ord(end[i]) - 1))
                    out.write(" ")
                    more_digits(sub_len, sub_len)
                else:
                    out.write(f"[{start[i]}] (")
                    uniform_range(from_sub, sub_nines)
                    out.write(")")
                    if ord(start[i]) < ord(end[i]) - 1:
                        out.write(" | ")
                        if to_sub == sub_nines:
                            digit_range(chr(ord(start[i]) + 1), end[i])
                            to_reached = True
                        else:
                            digit_range(chr(ord(start[i]) + 1), chr(ord(end[i]) - 1))
                        out.write(" ")
                        more_digits(sub_len, sub_len)
                if not to_reached:
                    out.write(" | ")
                    digit_range(end[i], end[i])
                    out.write(" ")
                    uniform_range(sub_zeros, to_sub)
                out.write(")")
            else:
                out.write(f"[{start[i]}-{end[i]}]")

    if has_min and has_max:
        if min_value < 0 and max_value < 0:
            out.write('"-" (')
            _build(-max_value, -min_value, out, decimals_left, True)
            out.write(")")
            return
        if min_value < 0:
            out.write('"-" (')
            _build(0, -min_value, out, decimals_left, True)
            out.write(") | ")
            min_value = 0
        min_s, max_s = str(min_value), str(max_value)
        for digits in range(len(min_s), len(max_s)):
            uniform_range(min_s, "9" * digits)
            min_s = "1" + "0" * digits
            out.write(" | ")
        uniform_range(min_s, max_s)
        return

    less_decimals = max(decimals_left - 1, 1)
    if has_min:
        if min_value < 0:
            out.write('"-" (')
            _build(INT64_MIN, -min_value, out, decimals_left, False)
            out.write(") | [0] | [1-9] ")
            more_digits(0, decimals_left - 1)
        elif min_value == 0:
            if top_level:
                out.write("[0] | [1-9] ")
                more_digits(0, less_decimals)
            else:
                more_digits(1, decimals_left)
        elif min_value <= 9:
            c = str(min_value)
            range_start = "1" if top_level else "0"
            if c > range_start:
                digit_range(range_start, chr(ord(c) - 1))
                out.write(" ")
                more_digits(1, less_decimals)
                out.write(" | ")
            digit_range(c, "9")
            out.write(" ")
            more_digits(0, less_decimals)
        else:
            min_s = str(min_value)
            c = min_s[0]
            if c > "1":
                digit_range("1" if top_level else "0", chr(ord(c) - 1))
                out.write(" ")
                more_digits(len(min_s), less_decimals)
                out.write(" | ")
            digit_range(c, c)
            out.write(" (")
            _build(int(min_s[1:]), INT64_MAX, out, less_decimals, False)
            out.write(")")
            if c < "9":
                out.write(" | ")
                digit_range(chr(ord(c) + 1), "9")
                out.write(" ")
                more_digits(len(min_s) - 1, less_decimals)
        return

    if has_max:
        if max_value >= 0:
            if top_level:
                out.write('"-" [1-9] ')
                more_digits(0, less_decimals)
                out.write(" | ")
            _build(0, max_value, out, decimals_left, True)
        else:
            out.write('"-" (')
            _build(-max_value, INT64_MAX, out, decimals_left, False)
            out.write(")")
        return

    raise ValueError("at least one of minimum or maximum must be set")
