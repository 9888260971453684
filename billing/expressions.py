"""A tiny expression language, so that a rule on a row is written once and read three ways.

The budget rule (:mod:`billing.budgets`) is applied by the ORM write path to rows it has loaded
(:meth:`Expr.value`, in Python), by the same path's ``UPDATE`` of rows it has not
(:meth:`Expr.orm`, a Django expression) and by the native PostgreSQL path inside its one-round-trip
opening and closing statements (:meth:`Expr.sql`, text). Each rendering follows SQL's rules for
NULL (an unknown comparison is neither true nor false; ``greatest`` skips NULLs), so the three
agree by construction; ``tests/test_turn_store.py`` checks the two write paths store the same rows.

A :class:`Col` is a column of the row (the SQL names it under a table alias); a :class:`Param`
is a value given when the expression is applied (the SQL takes a placeholder, or a fragment of
SQL the caller substitutes for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Case as OrmCase
from django.db.models import F, Q, Value, When
from django.db.models.functions import Coalesce as OrmCoalesce
from django.db.models.functions import Greatest as OrmGreatest
from django.db.models.functions import Round as OrmRound
from django.db.models.lookups import Exact, LessThan
from django.db.models.lookups import IsNull as OrmIsNull


class Expr:
    """One node. ``sql(alias, given)``: ``given`` maps a :class:`Param`'s name to the SQL that
    stands for it (default: the placeholder ``%(name)s``)."""

    def sql(self, alias: str, given: Mapping[str, str]) -> str:
        raise NotImplementedError

    def value(self, row: Any, params: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def orm(self, params: Mapping[str, Any]) -> Any:
        """A Django expression; a node that reads no column is computed here and passed as a value."""
        if not self.reads_columns():
            return Value(self.value(None, params))
        return self._orm(params)

    def _orm(self, params: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def reads_columns(self) -> bool:
        return any(part.reads_columns() for part in self.parts())

    def parts(self) -> tuple[Expr, ...]:
        return ()


@dataclass(frozen=True)
class Col(Expr):
    name: str

    def sql(self, alias, given):
        return f"{alias}.{self.name}"

    def value(self, row, params):
        return row[self.name] if isinstance(row, Mapping) else getattr(row, self.name)

    def _orm(self, params):
        return F(self.name)

    def reads_columns(self):
        return True


@dataclass(frozen=True)
class Param(Expr):
    name: str

    def sql(self, alias, given):
        return given.get(self.name, f"%({self.name})s")

    def value(self, row, params):
        return params[self.name]


@dataclass(frozen=True)
class Const(Expr):
    constant: Any

    def sql(self, alias, given):
        return str(self.constant)

    def value(self, row, params):
        return self.constant


@dataclass(frozen=True)
class Pick(Expr):
    """The choice whose name the column holds (``CASE column WHEN name THEN ...``); NULL for none."""

    column: Col
    choices: tuple[tuple[str, Expr], ...]
    cast: str

    def parts(self):
        return (self.column, *(choice for _, choice in self.choices))

    def sql(self, alias, given):
        whens = " ".join(f"WHEN '{name}' THEN {choice.sql(alias, given)}" for name, choice in self.choices)
        return f"(CASE {self.column.sql(alias, given)} {whens} END)::{self.cast}"

    def value(self, row, params):
        key = self.column.value(row, params)
        return next((choice.value(row, params) for name, choice in self.choices if name == key), None)

    def _orm(self, params):
        whens = [
            When(Exact(F(self.column.name), name), then=choice.orm(params)) for name, choice in self.choices
        ]
        return OrmCase(*whens, default=Value(None))


class _Operation(Expr):
    """A node over its operands, written ``Add(a, b)``."""

    def __init__(self, *operands: Expr) -> None:
        self.operands = operands

    def parts(self):
        return self.operands

    def values(self, row, params) -> list[Any]:
        return [operand.value(row, params) for operand in self.operands]


class Add(_Operation):
    def sql(self, alias, given):
        return "(" + " + ".join(o.sql(alias, given) for o in self.operands) + ")"

    def value(self, row, params):
        values = self.values(row, params)
        return None if None in values else sum(values[1:], values[0])

    def _orm(self, params):
        total = self.operands[0].orm(params)
        for operand in self.operands[1:]:
            total = total + operand.orm(params)
        return total


class Sub(_Operation):
    def sql(self, alias, given):
        left, right = self.operands
        return f"({left.sql(alias, given)} - {right.sql(alias, given)})"

    def value(self, row, params):
        left, right = self.values(row, params)
        return None if left is None or right is None else left - right

    def _orm(self, params):
        left, right = self.operands
        return left.orm(params) - right.orm(params)


class Mul(_Operation):
    def sql(self, alias, given):
        left, right = self.operands
        return f"{left.sql(alias, given)} * {right.sql(alias, given)}"

    def value(self, row, params):
        left, right = self.values(row, params)
        return None if left is None or right is None else left * right

    def _orm(self, params):
        left, right = self.operands
        return left.orm(params) * right.orm(params)


class Coalesce(_Operation):
    def sql(self, alias, given):
        return f"coalesce({', '.join(o.sql(alias, given) for o in self.operands)})"

    def value(self, row, params):
        return next((v for v in self.values(row, params) if v is not None), None)

    def _orm(self, params):
        return OrmCoalesce(*(o.orm(params) for o in self.operands))


class Greatest(_Operation):
    """PostgreSQL's ``greatest``: the largest of the values that are not NULL."""

    def sql(self, alias, given):
        return f"greatest({', '.join(o.sql(alias, given) for o in self.operands)})"

    def value(self, row, params):
        known = [v for v in self.values(row, params) if v is not None]
        return max(known) if known else None

    def _orm(self, params):
        return OrmGreatest(*(o.orm(params) for o in self.operands))


@dataclass(frozen=True)
class Round(Expr):
    """Rounded to ``places`` decimals, halves away from zero (PostgreSQL's ``round`` of a numeric)."""

    operand: Expr
    places: int

    def parts(self):
        return (self.operand,)

    def sql(self, alias, given):
        return f"round({self.operand.sql(alias, given)}, {self.places})"

    def value(self, row, params):
        value = self.operand.value(row, params)
        if value is None:
            return None
        return Decimal(value).quantize(Decimal(1).scaleb(-self.places), rounding=ROUND_HALF_UP)

    def _orm(self, params):
        return OrmRound(self.operand.orm(params), precision=self.places)


class Lt(_Operation):
    def sql(self, alias, given):
        left, right = self.operands
        return f"{left.sql(alias, given)} < {right.sql(alias, given)}"

    def value(self, row, params):
        left, right = self.values(row, params)
        return None if left is None or right is None else left < right

    def _orm(self, params):
        left, right = self.operands
        return LessThan(left.orm(params), right.orm(params))


class IsNull(_Operation):
    def sql(self, alias, given):
        return f"{self.operands[0].sql(alias, given)} IS NULL"

    def value(self, row, params):
        return self.operands[0].value(row, params) is None

    def _orm(self, params):
        return OrmIsNull(self.operands[0].orm(params), True)


class NotNull(_Operation):
    def sql(self, alias, given):
        return f"{self.operands[0].sql(alias, given)} IS NOT NULL"

    def value(self, row, params):
        return self.operands[0].value(row, params) is not None

    def _orm(self, params):
        return OrmIsNull(self.operands[0].orm(params), False)


class And(_Operation):
    def sql(self, alias, given):
        return "(" + " AND ".join(o.sql(alias, given) for o in self.operands) + ")"

    def value(self, row, params):
        values = self.values(row, params)
        return False if False in values else None if None in values else True

    def _orm(self, params):
        return Q(*(o.orm(params) for o in self.operands))


class Or(_Operation):
    def sql(self, alias, given):
        return "(" + " OR ".join(o.sql(alias, given) for o in self.operands) + ")"

    def value(self, row, params):
        values = self.values(row, params)
        return True if True in values else None if None in values else False

    def _orm(self, params):
        return Q(*(o.orm(params) for o in self.operands), _connector=Q.OR)


class Not(_Operation):
    def sql(self, alias, given):
        return f"NOT ({self.operands[0].sql(alias, given)})"

    def value(self, row, params):
        value = self.operands[0].value(row, params)
        return None if value is None else not value

    def _orm(self, params):
        return ~Q(self.operands[0].orm(params))


@dataclass(frozen=True)
class If(Expr):
    """``CASE WHEN condition THEN then ELSE otherwise END`` (an unknown condition takes ``otherwise``)."""

    condition: Expr
    then: Expr
    otherwise: Expr

    def parts(self):
        return (self.condition, self.then, self.otherwise)

    def sql(self, alias, given):
        condition, then, otherwise = (p.sql(alias, given) for p in self.parts())
        return f"(CASE WHEN {condition} THEN {then} ELSE {otherwise} END)"

    def value(self, row, params):
        branch = self.then if self.condition.value(row, params) is True else self.otherwise
        return branch.value(row, params)

    def _orm(self, params):
        return OrmCase(
            When(self.condition.orm(params), then=self.then.orm(params)), default=self.otherwise.orm(params)
        )
