"""The calculator tool: arithmetic parsed with `ast` against a whitelist, never `eval`.

Bounds keep hostile input cheap: the expression's length and node count, an estimate of a
power's size before it is computed, and a limit on every intermediate value's magnitude.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

MAX_EXPRESSION_CHARS = 1000
MAX_NODES = 300
MAX_MAGNITUDE = 1e300  # well inside a float, so int and float results mix safely
_MAX_POWER_BITS = 1000  # 2**1000 ≈ 1e301: anything bigger is past MAX_MAGNITUDE anyway
_MAX_FACTORIAL = 170  # 171! overflows a float

Number = int | float


class CalcError(ValueError):
    """An expression the calculator refuses or cannot compute; the message is for the model."""


def _factorial(n: Number) -> int:
    if isinstance(n, float) and not n.is_integer():
        raise CalcError("factorial needs a whole number")
    if not 0 <= n <= _MAX_FACTORIAL:
        raise CalcError(f"factorial needs a number from 0 to {_MAX_FACTORIAL}")
    return math.factorial(int(n))


def _round(x: Number, digits: Number = 0) -> Number:
    if not isinstance(digits, int) or abs(digits) > 15:
        raise CalcError("round's second argument must be a whole number from -15 to 15")
    return round(x, digits)


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "abs": abs, "round": _round, "min": min, "max": max,
    "sqrt": math.sqrt, "cbrt": math.cbrt, "exp": math.exp,
    "log": _log, "ln": math.log, "log10": math.log10, "log2": math.log2,
    "sin": math.sin, "cos": math.cos, "tan": math.tan,
    "asin": math.asin, "acos": math.acos, "atan": math.atan, "atan2": math.atan2,
    "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh,
    "degrees": math.degrees, "radians": math.radians, "hypot": math.hypot,
    "floor": math.floor, "ceil": math.ceil, "factorial": _factorial,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _power(base: Number, exponent: Number) -> Number:
    if abs(base) > 1 and exponent > 0:
        bits = exponent * math.log2(abs(base))
        if bits > _MAX_POWER_BITS:
            raise CalcError("the result is too large")
    if base == 0 and exponent < 0:
        raise CalcError("division by zero")
    result = base**exponent
    if isinstance(result, complex):
        raise CalcError("the result is not a real number")
    return result


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _checked(value: Number) -> Number:
    if isinstance(value, float) and not math.isfinite(value):
        raise CalcError("the result is not a finite number")
    if abs(value) > MAX_MAGNITUDE:
        raise CalcError("the result is too large")
    return value


def _evaluate(node: ast.AST) -> Number:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalcError(f"not a number: {node.value!r}"[:80])
        return _checked(node.value)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise CalcError(f"unknown name {node.id!r}")
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.BitXor):
            raise CalcError("'^' is not a power here: write 2**3")
        binary = _BINARY.get(type(node.op))
        if binary is None:
            raise CalcError("only + - * / // % ** are supported")
        return _checked(binary(_evaluate(node.left), _evaluate(node.right)))
    if isinstance(node, ast.UnaryOp):
        unary = _UNARY.get(type(node.op))
        if unary is None:
            raise CalcError("only unary + and - are supported")
        return _checked(unary(_evaluate(node.operand)))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords:
            raise CalcError(f"unknown function; known: {', '.join(sorted(_FUNCTIONS))}")
        args = [_evaluate(arg) for arg in node.args]
        return _checked(_FUNCTIONS[node.func.id](*args))
    raise CalcError(f"not allowed in an expression: {type(node).__name__}")


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression; CalcError (with a reason) for anything else."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalcError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    text = expression.replace("×", "*").replace("÷", "/").replace("−", "-").strip()
    if not text:
        raise CalcError("the expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise CalcError("not a valid arithmetic expression") from exc
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalcError("the expression is too complex")
    try:
        return _evaluate(tree)
    except CalcError:
        raise
    except ZeroDivisionError as exc:
        raise CalcError("division by zero") from exc
    except OverflowError as exc:
        raise CalcError("the result is too large") from exc
    except (ValueError, TypeError) as exc:
        raise CalcError(f"cannot compute: {exc}"[:200]) from exc
    except RecursionError as exc:
        raise CalcError("the expression is too deeply nested") from exc


def format_number(value: Number) -> str:
    if isinstance(value, float):
        return f"{value:.15g}"
    return str(value)
