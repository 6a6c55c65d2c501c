// node-postgres against weir: parameters, named (server-prepared)
// statements run twice, numeric and timestamp results, a rolled-back block.
const assert = require('assert');
const { Client } = require('pg');

(async () => {
  const client = new Client({ host: '127.0.0.1', port: +process.argv[2], user: 'weir', database: 'weir' });
  await client.connect();
  await client.query('CREATE TABLE notes (id INT PRIMARY KEY, body TEXT, amount NUMERIC(10,2), at TIMESTAMP)');
  for (let i = 0; i < 5; i++) {
    await client.query('INSERT INTO notes VALUES ($1, $2, $3, $4)',
      [i, `it's ${i}`, (i * 1.25).toFixed(2), '2024-01-01 00:00:0' + i]);
  }
  const select = { name: 'after', text: 'SELECT id, body, amount FROM notes WHERE id > $1 ORDER BY id' };
  let result = await client.query({ ...select, values: [2] });
  assert.deepStrictEqual(result.rows, [
    { id: 3, body: "it's 3", amount: '3.75' },
    { id: 4, body: "it's 4", amount: '5.00' },
  ]);
  assert.deepStrictEqual(result.fields.map((f) => f.dataTypeID), [23, 25, 1700]);
  result = await client.query({ ...select, values: [3] });
  assert.strictEqual(result.rowCount, 1);
  result = await client.query('SELECT sum(amount) AS total, max(at) AS last FROM notes');
  assert.strictEqual(result.rows[0].total, '12.50');
  assert.strictEqual(result.rows[0].last.getTime(), new Date(2024, 0, 1, 0, 0, 4).getTime());
  await client.query('BEGIN');
  await client.query('INSERT INTO notes (id) VALUES (99)');
  await client.query('ROLLBACK');
  result = await client.query('SELECT count(*)::int AS n FROM notes');
  assert.deepStrictEqual(result.rows, [{ n: 5 }]);
  await client.end();
  console.log('node-postgres ok');
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
