// pgjdbc against weir: server-prepared statements from the first run
// (prepareThreshold=1) with setTimestamp and setBigDecimal, update counts,
// DatabaseMetaData (tables, columns, primary keys), and a rollback.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.List;

public class JdbcCheck {
    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/weir?user=weir&prepareThreshold=1";
        try (Connection conn = DriverManager.getConnection(url)) {
            Statement statement = conn.createStatement();
            statement.execute("CREATE TABLE payments (id INT PRIMARY KEY, payer TEXT, at TIMESTAMP, amount NUMERIC(10,2))");
            PreparedStatement insert = conn.prepareStatement("INSERT INTO payments VALUES (?, ?, ?, ?)");
            for (int i = 0; i < 6; i++) {
                insert.setInt(1, i);
                insert.setString(2, "payer " + i);
                insert.setTimestamp(3, Timestamp.valueOf("2024-01-01 00:00:0" + i));
                insert.setBigDecimal(4, new BigDecimal("1.50").multiply(BigDecimal.valueOf(i)));
                check(insert.executeUpdate() == 1, "update count");
            }
            ResultSet totals = statement.executeQuery("SELECT count(*), sum(amount), max(at) FROM payments");
            check(totals.next(), "a row");
            check(totals.getLong(1) == 6, "count");
            check(totals.getBigDecimal(2).compareTo(new BigDecimal("22.50")) == 0, "sum " + totals.getBigDecimal(2));
            check(totals.getTimestamp(3).equals(Timestamp.valueOf("2024-01-01 00:00:05")), "max " + totals.getTimestamp(3));

            DatabaseMetaData meta = conn.getMetaData();
            check(meta.getDatabaseMajorVersion() == 15, "version " + meta.getDatabaseProductVersion());
            List<String> tables = new ArrayList<>();
            ResultSet found = meta.getTables(null, "public", "%", new String[] {"TABLE"});
            while (found.next()) tables.add(found.getString("TABLE_NAME"));
            check(tables.contains("payments"), "tables " + tables);
            List<String> columns = new ArrayList<>();
            ResultSet cols = meta.getColumns(null, "public", "payments", "%");
            while (cols.next()) columns.add(cols.getString("COLUMN_NAME") + " " + cols.getString("TYPE_NAME"));
            check(columns.equals(List.of("id int4", "payer text", "at timestamp", "amount numeric")), "columns " + columns);

            List<String> keys = new ArrayList<>();
            ResultSet primary = meta.getPrimaryKeys(null, "public", "payments");
            while (primary.next()) {
                keys.add(primary.getString("COLUMN_NAME") + " " + primary.getShort("KEY_SEQ") + " " + primary.getString("PK_NAME"));
            }
            check(keys.equals(List.of("id 1 payments_pkey")), "primary keys " + keys);

            conn.setAutoCommit(false);
            statement.execute("INSERT INTO payments (id) VALUES (100)");
            conn.rollback();
            conn.setAutoCommit(true);
            ResultSet count = statement.executeQuery("SELECT count(*) FROM payments");
            check(count.next() && count.getLong(1) == 6, "rollback");
        }
        System.out.println("pgjdbc ok");
    }
}
