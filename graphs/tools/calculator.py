"""The `calculator` tool: safe arithmetic by walking the expression's syntax tree (no eval)."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from graphs.tools.registry import ToolContext, ToolError, ToolRetry, ToolSpec

Number = int | float

MAX_EXPRESSION_LENGTH = 500
MAX_INTEGER_DIGITS = 1000
MAX_NESTING = 50
_MAX_BITS = int(MAX_INTEGER_DIGITS * math.log2(10)) + 1

_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _factorial(value: Number) -> Number:
    if isinstance(value, float):
        if not value.is_integer():
            raise ToolError("factorial() needs a whole number.")
        value = int(value)
    if value < 0:
        raise ToolError("factorial() is not defined for negative numbers.")
    if value > 450:
        raise ToolError(f"factorial({value}) is too large (the limit is factorial(450)).")
    return math.factorial(value)


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "degrees": math.degrees,
    "radians": math.radians,
    "floor": math.floor,
    "ceil": math.ceil,
    "factorial": _factorial,
}

_ALLOWED = (
    "numbers, + - * / // % ** and parentheses, the constants "
    + ", ".join(sorted(_CONSTANTS))
    + " and the functions "
    + ", ".join(sorted(_FUNCTIONS))
)


def _too_big() -> ToolError:
    return ToolError(f"The result is too large (more than {MAX_INTEGER_DIGITS} digits).")


def _check_int(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > _MAX_BITS:
        raise _too_big()
    return value


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        digits = exponent * math.log10(abs(base))
        if digits > MAX_INTEGER_DIGITS:
            raise ToolError(
                f"The exponent is too large: {base}**{exponent} would have about "
                f"{int(digits) + 1} digits (the limit is {MAX_INTEGER_DIGITS})."
            )
    if base == 0 and exponent < 0:
        raise ToolError("Division by zero: 0 cannot be raised to a negative power.")
    result = base**exponent
    if isinstance(result, complex):
        raise ToolError(f"{base}**{exponent} is not a real number.")
    return result


def _multiply(left: Number, right: Number) -> Number:
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and left.bit_length() + right.bit_length() > _MAX_BITS + 1
    ):
        raise _too_big()
    return left * right


_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _multiply,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_SYMBOLS: dict[type[ast.operator], str] = {
    ast.BitXor: "^ (use ** for powers)",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
}


def _evaluate(node: ast.AST, depth: int = 0) -> Number:
    if depth > MAX_NESTING:
        raise ToolError(f"The expression is nested too deeply (limit {MAX_NESTING}).")
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, depth + 1)
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ToolError(f"Only numbers are allowed, not {value!r}.")
        return _check_int(value)
    if isinstance(node, ast.BinOp):
        op = _BINARY.get(type(node.op))
        if op is None:
            symbol = _SYMBOLS.get(type(node.op), type(node.op).__name__)
            raise ToolError(f"The operator {symbol} is not supported.")
        left = _evaluate(node.left, depth + 1)
        right = _evaluate(node.right, depth + 1)
        return _check_int(op(left, right))
    if isinstance(node, ast.UnaryOp):
        unary = _UNARY.get(type(node.op))
        if unary is None:
            raise ToolError(f"The operator {type(node.op).__name__} is not supported.")
        return unary(_evaluate(node.operand, depth + 1))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(f"Unknown name {node.id!r}: only {_ALLOWED} are allowed.")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ToolError(f"Unknown function {name!r}: only {_ALLOWED} are allowed.")
        if node.keywords:
            raise ToolError(f"{node.func.id}() takes positional arguments only.")
        args = [_evaluate(arg, depth + 1) for arg in node.args]
        try:
            return _check_int(_FUNCTIONS[node.func.id](*args))
        except TypeError as error:
            raise ToolError(f"{node.func.id}(): {error}") from error
        except ValueError as error:
            shown = ", ".join(format_number(arg) for arg in args)
            raise ToolError(
                f"{node.func.id}({shown}) is undefined for real numbers ({error})."
            ) from error
    raise ToolError(f"Unsupported syntax: {ast.unparse(node)!r}. Only {_ALLOWED} are allowed.")


def format_number(value: Number) -> str:
    """Integers exactly; floats to 12 significant digits (so 0.1 + 0.2 reads 0.3)."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        raise _too_big()
    return f"{value:.12g}"


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression safely; raise ToolError with a clear reason otherwise."""
    text = expression.strip()
    if not text:
        raise ToolError("The expression is empty.")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ToolError(f"The expression is too long (limit {MAX_EXPRESSION_LENGTH} characters).")
    try:
        tree = ast.parse(text.replace("\u00d7", "*").replace("\u00f7", "/"), mode="eval")
    except SyntaxError as error:
        raise ToolError(f"Could not parse {text!r}: {error.msg}.") from error
    try:
        return format_number(_evaluate(tree))
    except ZeroDivisionError:
        raise ToolError("Division by zero is undefined.") from None
    except OverflowError:
        raise _too_big() from None
    except ValueError as error:
        if "int" in str(error) and "digits" in str(error):
            raise _too_big() from None
        raise ToolError(f"Math domain error: {error}.") from None
    except RecursionError:
        raise ToolError(f"The expression is nested too deeply (limit {MAX_NESTING}).") from None


class CalculatorArgs(BaseModel):
    """Arguments of the calculator tool."""

    expression: str = Field(
        min_length=1,
        max_length=MAX_EXPRESSION_LENGTH,
        description="An arithmetic expression, e.g. '(3 + 4) * 2 ** 10 / sqrt(2)'.",
    )


async def _run(args: Any, context: ToolContext) -> str:
    return calculate(args.expression)


def calculator_tool() -> ToolSpec:
    """The calculator tool spec."""
    return ToolSpec(
        name="calculator",
        description=(
            "Evaluate an arithmetic expression exactly. Supports + - * / // % ** and "
            "parentheses, pi, e, tau, and sqrt, log, log10, log2, exp, sin, cos, tan, asin, "
            "acos, atan, degrees, radians, floor, ceil, abs, round, min, max, factorial."
        ),
        args_schema=CalculatorArgs,
        coroutine=_run,
        category="math",
        timeout_seconds=5.0,
        retry=ToolRetry(max_attempts=1),
    )
