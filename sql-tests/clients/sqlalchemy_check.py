"""SQLAlchemy 2 and pandas against weir: create_engine().connect(),
relation names and column reflection through inspect(), Core queries,
primary-key reflection (get_pk_constraint and Table(autoload_with=)),
pandas.read_sql of a materialized view and a plain view, DataFrame.to_sql."""

import sys

import pandas as pd
import sqlalchemy as sa

engine = sa.create_engine(f"postgresql+psycopg://weir@127.0.0.1:{sys.argv[1]}/weir")
with engine.connect() as conn:
    conn.execute(sa.text("CREATE TABLE items (id INT PRIMARY KEY, category TEXT NOT NULL, price DOUBLE PRECISION)"))
    conn.execute(sa.text("INSERT INTO items VALUES (:id, :category, :price)"),
                 [{"id": i, "category": "ab"[i % 2], "price": i * 1.5} for i in range(10)])
    conn.commit()
    conn.execute(sa.text(
        "CREATE MATERIALIZED VIEW per_category AS"
        " SELECT category, count(*) AS n, sum(price) AS total FROM items GROUP BY category"))
    conn.execute(sa.text("CREATE VIEW cheap AS SELECT id, price FROM items WHERE price < 3"))
    conn.commit()

inspector = sa.inspect(engine)
tables = inspector.get_table_names()
assert "items" in tables, tables
assert inspector.get_view_names() == ["cheap"], inspector.get_view_names()
assert inspector.get_materialized_view_names() == ["per_category"]

columns = {c["name"]: c for c in inspector.get_columns("items")}
assert list(columns) == ["id", "category", "price"], columns
assert isinstance(columns["id"]["type"], sa.Integer), columns["id"]
assert isinstance(columns["category"]["type"], sa.Text), columns["category"]
assert isinstance(columns["price"]["type"], sa.Float), columns["price"]
assert not columns["category"]["nullable"] and columns["price"]["nullable"], columns

primary_key = inspector.get_pk_constraint("items")
assert primary_key["constrained_columns"] == ["id"], primary_key
assert primary_key["name"] == "items_pkey", primary_key
assert inspector.get_foreign_keys("items") == [] and inspector.get_indexes("items") == []

items = sa.Table("items", sa.MetaData(), autoload_with=engine)
assert [c.name for c in items.primary_key] == ["id"], items.primary_key
assert [c.name for c in items.columns] == ["id", "category", "price"], items.columns
with engine.connect() as conn:
    rows = conn.execute(sa.select(items.c.id, items.c.price).where(items.c.id < 3).order_by(items.c.id)).all()
    assert rows == [(0, 0.0), (1, 1.5), (2, 3.0)], rows

frame = pd.read_sql("SELECT * FROM per_category ORDER BY category", engine)
assert frame.to_dict("list") == {"category": ["a", "b"], "n": [5, 5], "total": [30.0, 37.5]}, frame
assert sorted(pd.read_sql("SELECT * FROM cheap", engine)["id"]) == [0, 1]
pd.DataFrame({"id": [100, 101], "category": ["z", "z"], "price": [1.0, 2.0]}).to_sql(
    "items", engine, if_exists="append", index=False)
assert pd.read_sql("SELECT count(*) AS n FROM items", engine)["n"][0] == 12
print("sqlalchemy", sa.__version__, "pandas", pd.__version__, "ok")
