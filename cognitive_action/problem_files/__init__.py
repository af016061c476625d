"""problem_files stage of cognitive_action: problem files and their safe expressions.

Expression strings in problem files are untrusted; :mod:`.expressions` parses them
against a whitelist into SymPy expressions without executing anything.

Examples
--------
>>> import sympy as sp
>>> from cognitive_action.problem_files import parse_expression
>>> x = sp.Symbol("x")
>>> parse_expression("sigmoid(x)", {"x": x})
1/(1 + exp(-x))
"""

from cognitive_action.problem_files.expressions import (
    CONSTANT_DIGITS,
    CONSTANT_NAMES,
    DERIVATIVE_SUFFIXES,
    FUNCTION_NAMES,
    MAX_ARGS,
    MAX_CALL_DEPTH,
    MAX_CONSTANT_DEPTH,
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_EXPONENT,
    MAX_LENGTH,
    MAX_MAGNITUDE,
    MAX_SECONDS,
    RESERVED_NAMES,
    ExpressionParser,
    NameValue,
    parse_expression,
    parse_matrix,
    parse_number,
    parse_vector,
    time_derivative_names,
    validate_name,
)

__all__ = [
    "CONSTANT_DIGITS",
    "CONSTANT_NAMES",
    "DERIVATIVE_SUFFIXES",
    "FUNCTION_NAMES",
    "MAX_ARGS",
    "MAX_CALL_DEPTH",
    "MAX_CONSTANT_DEPTH",
    "MAX_SECONDS",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_MAGNITUDE",
    "RESERVED_NAMES",
    "ExpressionParser",
    "NameValue",
    "parse_expression",
    "parse_matrix",
    "parse_number",
    "parse_vector",
    "time_derivative_names",
    "validate_name",
]
