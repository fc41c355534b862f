"""The runtime's own statements, compiled once and run on the transaction's DBAPI cursor.

The inbox claim, the outbox insert and the marks of published rows are the same few statements
in every transaction. Through a session each costs SQLAlchemy's whole execution path (ORM
execute, compiled-cache lookup, execution context, result) around a statement the database
runs in a few microseconds; here each is compiled once per dialect, its parameters converted
with the columns' own bind processors (the same values SQLAlchemy would send), and run with the
driver's `execute` or `executemany` on the connection of the caller's transaction. Errors come
out as SQLAlchemy's (`IntegrityError` on a duplicate key), and a lost connection is invalidated,
as on SQLAlchemy's own path.

A service's hot statements may be `Prepared` too (`Prepared.run`, in the handler's transaction):
the orders saga's writes and the gateway's status projection are. `KeyedRows` reads and writes
a table's rows by primary key that way (the participants' records: payments, shipping,
inventory), without the ORM's identity map and flush.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, Table, and_, bindparam, exc, insert, select, update
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, class_mapper
from sqlalchemy.sql.dml import UpdateBase
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession as ModelSession

from outbox.tables import INBOX, OUTBOX, UtcDateTime, utcnow

_Processor = Callable[[Any], Any] | None
_Row = TypeVar("_Row", bound=SQLModel)


class Prepared:
    """A DML statement (`insert`, `update`) for the given parameter names, compiled per dialect.

    `keys` are the names every row of parameters carries: for an `insert(table)`, the columns
    it sets; for a statement with `bindparam`s, their names. A row may carry more keys than
    these; they are not sent.
    """

    def __init__(self, statement: UpdateBase, keys: Sequence[str]) -> None:
        self._statement = statement
        self._keys = list(keys)
        self._compiled: weakref.WeakKeyDictionary[
            Dialect, tuple[str, tuple[tuple[str, _Processor], ...]]
        ] = weakref.WeakKeyDictionary()  # an engine's dialect: the engine may be disposed of

    def _compile(self, dialect: Dialect) -> tuple[str, tuple[tuple[str, _Processor], ...]]:
        found = self._compiled.get(dialect)
        if found is None:
            compiled = self._statement.compile(dialect=dialect, column_keys=self._keys)
            names = compiled.positiontup
            if names is None:  # every dialect Warren runs on is positional (qmark, $n)
                raise ValueError(f"{dialect.name} does not take positional parameters")
            if set(names) != set(self._keys):  # a default or literal we would not send
                raise ValueError(f"statement parameters {names} are not {self._keys}")
            processors = compiled._bind_processors  # what SQLAlchemy itself applies
            order: list[tuple[str, _Processor]] = []
            for name in names:
                process = processors.get(name)
                if process is not None and not callable(process):  # a tuple type's, per element
                    raise ValueError(f"parameter {name} is not a single value")
                order.append((name, process))
            found = self._compiled[dialect] = (compiled.string, tuple(order))
        return found

    def execute(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run the statement once per row, in `connection`'s transaction (begun if need be).

        The rows it changed (the driver's count: with several rows, their sum on SQLite).
        """
        if not rows:
            return 0
        dialect = connection.dialect
        sql, order = self._compile(dialect)
        params = [
            tuple(row[name] if process is None else process(row[name]) for name, process in order)
            for row in rows
        ]
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        try:
            if len(params) == 1:
                cursor.execute(sql, params[0])
            else:
                cursor.executemany(sql, params)
            changed: int = cursor.rowcount
        except dialect.loaded_dbapi.Error as error:
            lost = dialect.is_disconnect(error, dbapi_connection, cursor)
            if lost:
                connection.invalidate(error)
            raise exc.DBAPIError.instance(
                sql,
                params,
                error,
                dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
                dialect=dialect,
            ) from error
        finally:
            cursor.close()
        return changed

    def execute_in(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
        """`execute` on the connection of `session`'s transaction (for `AsyncSession.run_sync`)."""
        return self.execute(session.connection(), rows)

    async def run(self, session: AsyncSession, params: Mapping[str, Any]) -> int:
        """Run it once with `params` in `session`'s transaction; the rows it changed.

        For a handler's or a projection's own hot statements (see `workers/orders/store.py`).
        """
        return await session.run_sync(self.execute_in, [params])


# The runtime's statements. An outbox row as `UnitOfWork` writes it (its keys, in this order):
OUTBOX_KEYS = (
    "id",
    "exchange",
    "routing_key",
    "deliver_at",
    "type",
    "correlation_id",
    "headers",
    "body",
    "created_at",
    "available_at",
    "attempts",
)
ADD_TO_OUTBOX = Prepared(insert(OUTBOX), OUTBOX_KEYS)
# One message handled by one consumer; a second claim of it fails on the primary key.
CLAIM_INBOX = Prepared(insert(INBOX), ("consumer", "message_id", "processed_at"))
# A dispatched row, confirmed by the broker: one row per id (`executemany`).
MARK_PUBLISHED = Prepared(
    update(OUTBOX)
    .where(OUTBOX.c.id == bindparam("row_id"))
    .values(published_at=bindparam("at", type_=UtcDateTime())),
    ("row_id", "at"),
)


def marks(ids: Sequence[str]) -> list[dict[str, Any]]:
    """The parameters of `MARK_PUBLISHED` for rows published now."""
    at = utcnow()
    return [{"row_id": row_id, "at": at} for row_id in ids]


def loaded(model: type[_Row], values: Mapping[Any, Any]) -> _Row:
    """An instance of a table model, outside any session, holding a row's `values`.

    A table model's `__init__` sets each field through SQLAlchemy's instrumentation and records
    it as a change (about 90 µs for an order's sixteen columns); a row read back needs neither,
    so its values go straight into the instance's dict, as a query's loading does (about 6 µs).
    The instance compares, dumps and changes like one built with `model(**values)`; values that
    leave a field out, or a model with private attributes, go through the constructor (whose
    defaults fill them).
    """
    if model.__private_attributes__ or not values.keys() >= model.model_fields.keys():
        return model(**values)
    instance: _Row = class_mapper(model).class_manager.new_instance()
    instance.__dict__.update(values)
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


class KeyedRows(Generic[_Row]):
    """The rows of a table, by primary key: read, insert, update, without the ORM.

    Reads are Core selects built once; writes are `Prepared`, run at once in the session's
    transaction (a duplicate key raises `IntegrityError` there, not at a later flush). The rows
    it returns are detached instances of `model`: change one with `update`, not the session.
    A key is the primary key's value, or a tuple of them for a composite key.
    """

    def __init__(self, model: type[_Row]) -> None:
        table: Table = model.__table__  # type: ignore[attr-defined]
        self._model, self.table = model, table
        self._keys = [column.name for column in table.primary_key.columns]
        self._columns = [column.name for column in table.columns]
        self._defaults = {
            column.name: column.default
            for column in table.columns
            if column.default is not None
            and (column.default.is_callable or column.default.is_scalar)
        }
        self._by_key = and_(*(table.c[name] == bindparam(f"key_{name}") for name in self._keys))
        self._select = select(table).where(self._by_key)
        self._locking = self._select.with_for_update()
        self._insert = Prepared(insert(table), self._columns)
        self._updates: dict[tuple[str, ...], Prepared] = {}

    def _key_params(self, key: Any) -> dict[str, Any]:
        values = key if isinstance(key, tuple) else (key,)
        return {f"key_{name}": value for name, value in zip(self._keys, values, strict=True)}

    async def get(self, session: ModelSession, key: Any, *, lock: bool = False) -> _Row | None:
        """The row with this key in the session's transaction, or None; `lock`: FOR UPDATE."""
        statement = self._locking if lock else self._select
        found = (await session.exec(statement, params=self._key_params(key))).first()  # type: ignore[call-overload]
        return None if found is None else loaded(self._model, found._mapping)

    async def select(
        self, session: ModelSession, statement: Select[Any], params: Mapping[str, Any]
    ) -> list[_Row]:
        """The rows of `statement` (a select of `table` built once), as instances of the model."""
        found = await session.exec(statement, params=params)  # type: ignore[call-overload]
        return [loaded(self._model, row._mapping) for row in found]

    async def add(self, session: AsyncSession, row: _Row) -> None:
        """Insert `row`; a column it leaves None gets the column's default, as the ORM would."""
        values = {name: getattr(row, name) for name in self._columns}
        for name, default in self._defaults.items():
            if values[name] is None:
                arg = default.arg  # type: ignore[attr-defined]
                values[name] = arg(None) if default.is_callable else arg
                setattr(row, name, values[name])
        await self._insert.run(session, values)

    async def update(self, session: AsyncSession, row: _Row, *names: str) -> None:
        """Write the columns `names` of `row` back to its row."""
        statement = self._updates.get(names)
        if statement is None:
            changed: dict[str, Any] = {name: bindparam(f"new_{name}") for name in names}
            statement = self._updates[names] = Prepared(
                update(self.table).where(self._by_key).values(changed),
                (*(f"key_{name}" for name in self._keys), *(f"new_{name}" for name in names)),
            )
        values = {f"new_{name}": getattr(row, name) for name in names}
        key = tuple(getattr(row, name) for name in self._keys)
        await statement.run(session, self._key_params(key) | values)
