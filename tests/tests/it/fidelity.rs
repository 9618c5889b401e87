//! Issue 4, "carries everything over exactly": a master holding every hard case yields a
//! replica equal to it cell for cell (`HEX` of every column of every row), object for
//! object (`SHOW CREATE …`) and grant for grant (`SHOW CREATE USER`, `SHOW GRANTS`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use amsu_backup::{BackupError, LogicalCopy, LogicalOptions};
use amsu_core::{
    BoxError, CopyReport, DataCopier, Event, EventSink, NoEvents, ServerAddr, Setup, SetupOptions,
};
use amsu_mysql::conn::Session;
use amsu_mysql::{MysqlMaster, MysqlReplica};
use amsu_tests::servers::{
    create_bank, exec, pair, query, scalar, wait_caught_up, Writer, BANK_TOTAL,
};

const SYSTEM_DBS: &str = "'mysql', 'information_schema', 'performance_schema', 'sys'";
const SYSTEM_USERS: &str = "'root', 'mariadb.sys', 'mysql', 'PUBLIC', ''";

fn q(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// The exact content of every user base table: each row as the `HEX` of every column
/// (numbers and dates through their text form, FLOAT widened to DOUBLE first), rows sorted.
async fn cells(addr: &ServerAddr) -> BTreeMap<String, Vec<Vec<Option<String>>>> {
    let tables = query(
        addr,
        &format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND TABLE_SCHEMA NOT IN ({SYSTEM_DBS}) ORDER BY 1, 2"
        ),
    )
    .await;
    let mut out = BTreeMap::new();
    for t in tables {
        let (db, name) = (t[0].clone().unwrap(), t[1].clone().unwrap());
        let cols = query(
            addr,
            &format!(
                "SELECT COLUMN_NAME, LOWER(DATA_TYPE) FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
                lit(&db),
                lit(&name)
            ),
        )
        .await;
        let exprs: Vec<String> = cols
            .iter()
            .map(|c| {
                let col = q(c[0].as_deref().unwrap());
                match c[1].as_deref().unwrap() {
                    // Shortest round-trip text, plus the sign of a zero.
                    "float" | "double" => format!(
                        "HEX(CONCAT(CAST({col} AS DOUBLE), IF({col} = 0 AND ATAN2({col}, -1) < 0, ' neg', '')))"
                    ),
                    "tinyint" | "smallint" | "mediumint" | "int" | "bigint" | "decimal"
                    | "date" | "time" | "datetime" | "timestamp" | "year" => {
                        format!("HEX(CONCAT({col}))")
                    }
                    _ => format!("HEX({col})"),
                }
            })
            .collect();
        let mut rows = query(
            addr,
            &format!("SELECT {} FROM {}.{}", exprs.join(", "), q(&db), q(&name)),
        )
        .await;
        rows.sort();
        out.insert(format!("{db}.{name}"), rows);
    }
    out
}

/// `SHOW CREATE …` of every database, table, sequence, view, routine, trigger and event
/// (every column of the answer, so `sql_mode`, character sets and time zones count too),
/// trigger order, and the state of every sequence.
async fn objects(addr: &ServerAddr) -> BTreeMap<String, Vec<Option<String>>> {
    let mut out = BTreeMap::new();
    fn show(
        out: &mut BTreeMap<String, Vec<Option<String>>>,
        key: String,
        rows: Vec<Vec<Option<String>>>,
    ) {
        assert_eq!(rows.len(), 1, "{key}: {rows:?}");
        out.insert(key, rows.into_iter().next().unwrap());
    }
    for d in query(
        addr,
        &format!("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ({SYSTEM_DBS})"),
    )
    .await
    {
        let d = d[0].clone().unwrap();
        show(
            &mut out,
            format!("database {d}"),
            query(addr, &format!("SHOW CREATE DATABASE {}", q(&d))).await,
        );
    }
    let lists = [
        ("TABLE", format!("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND TABLE_SCHEMA NOT IN ({SYSTEM_DBS})")),
        ("SEQUENCE", format!("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'SEQUENCE' AND TABLE_SCHEMA NOT IN ({SYSTEM_DBS})")),
        ("VIEW", format!("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA NOT IN ({SYSTEM_DBS})")),
        ("PROCEDURE", format!("SELECT ROUTINE_SCHEMA, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'PROCEDURE' AND ROUTINE_SCHEMA NOT IN ({SYSTEM_DBS})")),
        ("FUNCTION", format!("SELECT ROUTINE_SCHEMA, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'FUNCTION' AND ROUTINE_SCHEMA NOT IN ({SYSTEM_DBS})")),
        ("TRIGGER", format!("SELECT TRIGGER_SCHEMA, TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA NOT IN ({SYSTEM_DBS})")),
        ("EVENT", format!("SELECT EVENT_SCHEMA, EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA NOT IN ({SYSTEM_DBS})")),
    ];
    for (kind, list) in lists {
        for r in query(addr, &list).await {
            let (db, name) = (r[0].clone().unwrap(), r[1].clone().unwrap());
            let obj = format!("{}.{}", q(&db), q(&name));
            let mut rows = query(addr, &format!("SHOW CREATE {kind} {obj}")).await;
            if kind == "EVENT" {
                // The one intended difference: enabled events are disabled on the
                // replica (checked separately).
                for v in rows[0].iter_mut().flatten() {
                    *v = v.replace(" DISABLE ON SLAVE ", " ENABLE ");
                }
            }
            if kind == "TRIGGER" {
                // `Created` is when the trigger was created on that server; nothing can
                // set it. Order is compared below.
                rows[0].truncate(6);
            }
            if kind == "SEQUENCE" {
                let state = query(addr, &format!("SELECT * FROM {obj}")).await;
                out.insert(format!("sequence state {obj}"), state[0].clone());
            }
            show(&mut out, format!("{kind} {obj}"), rows);
        }
    }
    let order = query(
        addr,
        &format!(
            "SELECT CONCAT_WS('|', EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER, TRIGGER_NAME) \
             FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA NOT IN ({SYSTEM_DBS}) ORDER BY 1"
        ),
    )
    .await;
    out.insert(
        "trigger order".into(),
        order.into_iter().map(|r| r[0].clone()).collect(),
    );
    out
}

/// `SHOW CREATE USER` and `SHOW GRANTS` of every non-system account and role.
async fn grants(addr: &ServerAddr) -> BTreeMap<String, Vec<Option<String>>> {
    let mut out = BTreeMap::new();
    for r in query(
        addr,
        &format!("SELECT User, Host, is_role FROM mysql.user WHERE User NOT IN ({SYSTEM_USERS}) ORDER BY 1, 2"),
    )
    .await
    {
        let (user, host, role) = (
            r[0].clone().unwrap(),
            r[1].clone().unwrap(),
            r[2].as_deref() == Some("Y"),
        );
        let target = if role {
            lit(&user)
        } else {
            format!("{}@{}", lit(&user), lit(&host))
        };
        let mut lines: Vec<Option<String>> = Vec::new();
        if !role {
            lines.extend(
                query(addr, &format!("SHOW CREATE USER {target}"))
                    .await
                    .into_iter()
                    .map(|r| r[0].clone()),
            );
        }
        let mut g: Vec<Option<String>> = query(addr, &format!("SHOW GRANTS FOR {target}"))
            .await
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        g.sort();
        lines.extend(g);
        out.insert(target, lines);
    }
    out
}

fn assert_maps_equal<V: std::fmt::Debug + PartialEq>(
    what: &str,
    m: &BTreeMap<String, V>,
    r: &BTreeMap<String, V>,
) {
    let mk: Vec<_> = m.keys().collect();
    let rk: Vec<_> = r.keys().collect();
    assert_eq!(mk, rk, "{what}: the same names on both sides");
    for (k, v) in m {
        assert_eq!(
            Some(v),
            r.get(k),
            "{what}: {k} differs (left master, right replica)"
        );
    }
}

async fn run_setup(m: &ServerAddr, r: &ServerAddr, port: u16, copier: &dyn DataCopier) {
    let master = MysqlMaster::new(m.clone());
    let replica = MysqlReplica::new(r.clone());
    let setup = Setup::new(
        &master,
        &replica,
        copier,
        SetupOptions::new("127.0.0.1", port).wait_caught_up(true),
    );
    setup
        .run(Arc::new(NoEvents))
        .await
        .unwrap_or_else(|e| panic!("setup fails: {e}"));
}

/// Hex of the bytes 0x80..=0xFF: every latin1 character above ASCII.
fn high_latin1_hex() -> String {
    (0x80u8..=0xff).map(|b| format!("{b:02X}")).collect()
}

/// Every type and edge value, every kind of object and every kind of account, with the
/// master's and the replica's global time zones both set and different: after `Setup`
/// (logical copy, replication started and caught up) the replica equals the master
/// cell for cell, object for object and grant for grant, and copied users log in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_object_and_account_is_copied_exactly() {
    let p = pair(
        |o| o.extra_option("--default-time-zone=+05:30"),
        |o| o.extra_option("--default-time-zone=-03:00"),
    )
    .await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    let weird_db = "we`ird \"db' ü";
    let wdb = q(weird_db);
    let latin = high_latin1_hex();
    let s = |v: &str| v.to_string();
    let sqls: Vec<String> = vec![
        // 1. Types and edge values.
        s("CREATE DATABASE fid CHARACTER SET latin1 COLLATE latin1_german2_ci"),
        s("CREATE TABLE fid.types (
            id INT PRIMARY KEY,
            b BINARY(8), vb VARBINARY(64), bl BLOB, txt TEXT CHARACTER SET utf8mb4,
            f FLOAT, d DOUBLE, dec65 DECIMAL(65,30),
            bit1 BIT(1), bit7 BIT(7), bit64 BIT(64),
            e ENUM('', 'a', 'b c') CHARACTER SET utf8mb4, st SET('x', 'y', 'z'),
            j JSON, ip INET6, u UUID,
            g GEOMETRY, pt POINT, poly POLYGON, gc GEOMETRYCOLLECTION,
            tm TIME(6), dt DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, dz DATE, y YEAR,
            emoji VARCHAR(40) CHARACTER SET utf8mb4, lat VARCHAR(200) CHARACTER SET latin1,
            bin VARBINARY(40)
        ) ENGINE=InnoDB"),
        s("INSERT INTO fid.types (id) VALUES (0)"),
        s(r#"INSERT INTO fid.types VALUES (1,
            X'00090A0D5C4EFF80', X'00090A0D5C4E5C5CFFFE80C3', X'5C4E000A0D09FF5C', 'a\tb\nc\\d\r\0e',
            -1e-50, -0e0, 99999999999999999999999999999999999.999999999999999999999999999999,
            b'1', b'1111111', b'1111111111111111111111111111111111111111111111111111111111111111',
            '', 'x,z', '{\"a\": [1, \"x\\ty\", null], \"ü\": \"🙂\"}', '::ffff:1.2.3.4',
            '123e4567-e89b-12d3-a456-426655440000',
            ST_GeomFromText('POINT(1.5 -2.25)', 4326), ST_GeomFromText('POINT(0 0)', 0),
            ST_GeomFromText('POLYGON((0 0, 10 0, 10 10, 0 10, 0 0), (2 2, 3 2, 3 3, 2 2))', 4326),
            ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1), LINESTRING(0 0, 1 1, 2 0))', 0),
            '-838:59:59.999999', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999',
            '0000-00-00', 1901, 'a 🙂 ü ж 𝄞', '', X'00')"#),
        // Rows 2..: the NULL / '' / 'NULL' / '\N' family in every string-like column,
        // and the numeric and temporal extremes.
        s(r"INSERT INTO fid.types (id, b, vb, bl, txt, emoji, lat, bin) VALUES
            (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
            (3, '', '', '', '', '', '', ''),
            (4, 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL'),
            (5, '\\N', '\\N', '\\N', '\\N', '\\N', '\\N', '\\N'),
            (6, '\\', '\t', '\n', '\r\n', '\\\\N', 'x\ty', '\\0')"),
        s("INSERT INTO fid.types (id, f, d, dec65, bit1, bit7, bit64, e, st, tm, dt, ts, dz, y) VALUES
            (10, 3.4028234e38, 1.7976931348623157e308, -99999999999999999999999999999999999.999999999999999999999999999999,
                b'0', b'0', b'0', 'a', '', '-00:00:00.5', '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01.000000', '1000-01-01', 2155),
            (11, 1.17549435e-38, 2.2250738585072014e-308, 0.000000000000000000000000000001,
                b'1', b'1000000', b'1000000000000000000000000000000000000000000000000000000000000000',
                'b c', 'x,y,z', '838:59:59.000001', '0000-00-00 00:00:00.000000', '0000-00-00 00:00:00', '2024-02-29', 0),
            (12, 1.4e-45, 4.9406564584124654e-324, -0.000000000000000000000000000001,
                NULL, NULL, NULL, NULL, NULL, '00:00:00.000000', '2024-03-31 02:30:00.5', '2024-03-31 02:30:00.5', NULL, NULL),
            (13, 0.1, 0.1, 0, NULL, NULL, NULL, NULL, NULL, '-00:00:01', NULL, NULL, NULL, NULL),
            (14, -3.4028234e38, -2.2250738585072014e-308, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"),
        s("INSERT INTO fid.types (id, ip, u, g, pt, poly, gc) VALUES
            (20, '2001:db8::1', '00000000-0000-0000-0000-000000000000',
             ST_GeomFromText('POLYGON((0 0, 1 0, 1 1, 0 0))', 0), ST_GeomFromText('POINT(-180 90)', 4326),
             ST_GeomFromText('POLYGON((0 0, 1 0, 1 1, 0 0))', 0),
             ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1), POLYGON((0 0, 1 0, 1 1, 0 0)))', 4326))"),
        format!("INSERT INTO fid.types (id, lat, bin, vb) VALUES (30, X'{latin}', X'FFFEFD80', X'{latin}')"),
        // 2. Objects.
        s("CREATE DATABASE obj CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci"),
        s("CREATE TABLE obj.parts (id INT NOT NULL, k DATE NOT NULL, v VARCHAR(10), PRIMARY KEY (id, k))
            PARTITION BY RANGE (YEAR(k)) (PARTITION p0 VALUES LESS THAN (2000), PARTITION p1 VALUES LESS THAN MAXVALUE)"),
        s("INSERT INTO obj.parts VALUES (1, '1999-01-01', 'old'), (1, '2020-01-01', 'new'), (2, '2020-01-02', NULL)"),
        s("CREATE TABLE obj.gen (id INT AUTO_INCREMENT PRIMARY KEY, a INT NOT NULL,
            v INT AS (a * 2) VIRTUAL, st VARCHAR(20) AS (CONCAT('x', a)) STORED,
            hid INT INVISIBLE DEFAULT 7, CHECK (a >= 0), CONSTRAINT `small a` CHECK (a < 1000),
            KEY (v)) ENGINE=InnoDB"),
        s("INSERT INTO obj.gen (a) VALUES (1), (2), (3), (4), (5)"),
        s("INSERT INTO obj.gen (a, hid) VALUES (6, 60)"),
        s("DELETE FROM obj.gen WHERE id >= 5"),
        // Secondary keys (added after the data): order, prefixes, DESC, comments, odd names.
        s("CREATE TABLE obj.keys (id INT PRIMARY KEY, a INT, b VARCHAR(30), c INT NOT NULL,
            KEY kb (b(5)), UNIQUE KEY ua (a), KEY kc (c DESC) COMMENT 'c''s (key', KEY `odd ``key` (a, c),
            UNIQUE KEY uc (c)) ENGINE=InnoDB"),
        s("INSERT INTO obj.keys SELECT seq, seq * 3, CONCAT('b', seq), 1000 - seq FROM obj.seq_1_to_500"),
        s("CREATE TABLE obj.my (k VARCHAR(10) PRIMARY KEY, v TEXT) ENGINE=MyISAM"),
        s("INSERT INTO obj.my VALUES ('a', 'NULL'), ('b', ''), ('c', NULL)"),
        s("CREATE TABLE obj.ar (id INT AUTO_INCREMENT PRIMARY KEY, v BLOB) ENGINE=Aria AUTO_INCREMENT=1000"),
        s("INSERT INTO obj.ar (v) VALUES (X'00FF'), (NULL)"),
        s("CREATE TABLE obj.parent (id INT PRIMARY KEY) ENGINE=InnoDB"),
        s("CREATE TABLE obj.child (id INT PRIMARY KEY, p INT, CONSTRAINT fk_p FOREIGN KEY (p) REFERENCES obj.parent (id) ON DELETE CASCADE) ENGINE=InnoDB"),
        s("CREATE TABLE obj.tree (id INT PRIMARY KEY, up INT, FOREIGN KEY (up) REFERENCES obj.tree (id)) ENGINE=InnoDB"),
        s("INSERT INTO obj.parent VALUES (1), (2)"),
        s("INSERT INTO obj.child VALUES (10, 1), (11, 2), (12, NULL)"),
        s("INSERT INTO obj.tree VALUES (1, NULL), (2, 1), (3, 2)"),
        s("CREATE TABLE obj.nopk (a INT, b TEXT) ENGINE=InnoDB"),
        s("INSERT INTO obj.nopk VALUES (1, 'dup'), (1, 'dup'), (NULL, NULL), (2, '')"),
        s("CREATE TABLE obj.strpk (k VARCHAR(20) PRIMARY KEY, v INT) ENGINE=InnoDB"),
        s("INSERT INTO obj.strpk VALUES ('', 0), ('ü', 1), ('a b', 2)"),
        s("CREATE TABLE obj.dpk (k DECIMAL(20,5), c CHAR(3), v INT, PRIMARY KEY (k, c)) ENGINE=InnoDB"),
        s("INSERT INTO obj.dpk VALUES (-1.5, 'a', 1), (1e10, 'b', 2)"),
        s("CREATE SEQUENCE obj.seq1 START WITH 100 INCREMENT BY 5 MINVALUE 1 MAXVALUE 100000 CACHE 10"),
        s("CREATE SEQUENCE obj.`seq two` START WITH -5 INCREMENT BY -1 MINVALUE -10 MAXVALUE 0 CYCLE NOCACHE ENGINE=Aria"),
        s("SELECT NEXTVAL(obj.seq1), NEXTVAL(obj.seq1), NEXTVAL(obj.seq1)"),
        s("SELECT NEXTVAL(obj.`seq two`)"),
        s("SELECT SETVAL(obj.`seq two`, -9, 1, 3)"),
        s("CREATE SEQUENCE obj.seq_unused"),
        // Routines first: a view below calls one.
        s(r#"CREATE DEFINER=`fiduser`@`%` PROCEDURE obj.`p;;1`(IN x INT)
            COMMENT 'DELIMITER ;; it''s'
            BEGIN
              DECLARE s VARCHAR(100) DEFAULT 'a;;b \\ "q" ''x''';
              SELECT s, x, 'DELIMITER //' AS `;;`;
            END"#),
        s(r#"CREATE FUNCTION obj.f1(x INT) RETURNS VARCHAR(50) CHARACTER SET utf8mb4 DETERMINISTIC
            RETURN CONCAT('a;;b', '\\', x, "DELIMITER //", 'ü')"#),
        s("CREATE DEFINER=`fiduser`@`%` SQL SECURITY INVOKER VIEW obj.v_base AS SELECT id, a FROM obj.gen WHERE a > 1"),
        s("CREATE VIEW obj.a_top AS SELECT id, obj.f1(a) AS fa FROM obj.v_base"),
        s("CREATE VIEW obj.`a top 2` AS SELECT * FROM obj.a_top UNION ALL SELECT id, 'x' FROM obj.v_base"),
        s("CREATE DEFINER=fid_reader VIEW obj.v_role AS SELECT k FROM obj.strpk"),
        s("CREATE TRIGGER obj.t1 BEFORE INSERT ON obj.gen FOR EACH ROW SET NEW.a = NEW.a + 0"),
        s("CREATE TRIGGER obj.t2 BEFORE INSERT ON obj.gen FOR EACH ROW FOLLOWS t1 SET NEW.a = NEW.a + 0"),
        s("CREATE TRIGGER obj.t0 BEFORE INSERT ON obj.gen FOR EACH ROW PRECEDES t1 SET NEW.a = NEW.a + 0"),
        s("CREATE TRIGGER obj.t15 BEFORE INSERT ON obj.gen FOR EACH ROW FOLLOWS t1 BEGIN IF NEW.a < 0 THEN SET NEW.a = 0; END IF; END"),
        s("CREATE TRIGGER obj.ta AFTER DELETE ON obj.parent FOR EACH ROW INSERT INTO obj.my VALUES (CONCAT('del', OLD.id), ';;')"),
        s("CREATE EVENT obj.ev1 ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DO INSERT INTO obj.my VALUES ('ev', 'x;;y')"),
        s("CREATE EVENT obj.ev_off ON SCHEDULE AT '2031-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE COMMENT 'off' DO DELETE FROM obj.my"),
        // Identifiers with spaces, backticks, quotes, unicode and reserved words.
        format!("CREATE DATABASE {wdb} CHARACTER SET utf8mb4"),
        format!("CREATE TABLE {wdb}.`select` (`from` INT PRIMARY KEY, `the ``col`` \"x\"` VARCHAR(10), `ж'` INT) ENGINE=InnoDB"),
        format!("INSERT INTO {wdb}.`select` VALUES (1, 'één', 1), (2, NULL, NULL)"),
        format!("CREATE VIEW {wdb}.`view \"x\" ``y``` AS SELECT `from` AS `where` FROM {wdb}.`select`"),
        format!("CREATE PROCEDURE {wdb}.`proc;; ``q`` 'r'`() SELECT 1"),
        format!("CREATE TRIGGER {wdb}.`trig ü ``t``` BEFORE UPDATE ON {wdb}.`select` FOR EACH ROW SET NEW.`ж'` = 1"),
        format!("CREATE EVENT {wdb}.`ev``ent` ON SCHEDULE EVERY 1 HOUR STARTS '2035-01-01' DO SELECT 1"),
        // 3. Accounts.
        s("CREATE ROLE fid_reader"),
        s("CREATE ROLE `fid admin`"),
        s("GRANT SELECT ON obj.* TO fid_reader"),
        s("GRANT fid_reader TO `fid admin`"),
        s("CREATE USER fiduser@'%' IDENTIFIED BY 'Fid-pw-1'"),
        s("GRANT `fid admin` TO fiduser@'%'"),
        s("SET DEFAULT ROLE `fid admin` FOR fiduser@'%'"),
        s("GRANT PROCESS, RELOAD ON *.* TO fiduser@'%'"),
        s("GRANT SELECT, INSERT ON fid.* TO fiduser@'%' WITH GRANT OPTION"),
        s("GRANT SELECT ON obj.my TO fiduser@'%'"),
        s("GRANT SELECT (k), UPDATE (v) ON obj.strpk TO fiduser@'%'"),
        s("GRANT EXECUTE ON PROCEDURE obj.`p;;1` TO fiduser@'%'"),
        s("GRANT EXECUTE ON FUNCTION obj.f1 TO fiduser@'%'"),
        s("CREATE USER 'us''er \" ü'@'10.%' IDENTIFIED BY 'x'"),
        format!("GRANT SELECT, SHOW VIEW ON {wdb}.* TO 'us''er \" ü'@'10.%'"),
        format!("GRANT UPDATE (`the ``col`` \"x\"`) ON {wdb}.`select` TO 'us''er \" ü'@'10.%'"),
        s("CREATE USER nopass@localhost ACCOUNT LOCK"),
    ];
    let refs: Vec<&str> = sqls.iter().map(String::as_str).collect();
    exec(&m, &refs).await;
    // An event created under the master's own time zone.
    {
        let mut sm = Session::open(&m).await.unwrap();
        for sql in [
            "SET time_zone = DEFAULT",
            "CREATE EVENT obj.ev_tz ON SCHEDULE EVERY 1 WEEK STARTS '2032-06-01 12:00:00' DO SELECT 1",
        ] {
            sm.exec(sql, sql).await.unwrap();
        }
    }
    // ed25519 when the plugin is installable on both servers.
    let ed = {
        let install = "INSTALL SONAME 'auth_ed25519'";
        let mut sm = Session::open(&m).await.unwrap();
        let mut sr = Session::open(&r).await.unwrap();
        let a = sm.exec(install, install).await;
        let b = sr.exec(install, install).await;
        match (a, b) {
            (Ok(()), Ok(())) => {
                exec(
                    &m,
                    &[
                        "CREATE USER ed@'%' IDENTIFIED VIA ed25519 USING PASSWORD('Ed-pw-1')",
                        "GRANT SELECT ON obj.* TO ed@'%'",
                    ],
                )
                .await;
                true
            }
            (a, b) => {
                eprintln!(
                    "SKIPPED sub-case ed25519: the auth_ed25519 plugin cannot be installed \
                     (master: {a:?}, replica: {b:?}); native-password accounts are still tested"
                );
                false
            }
        }
    };

    let copier = LogicalCopy::new(
        m.clone(),
        r.clone(),
        LogicalOptions::default().threads(2).chunk_bytes(4096),
    );
    run_setup(&m, &r, p.master.port(), &copier).await;
    wait_caught_up(&m, &r).await;

    assert_eq!(
        scalar(&m, "SELECT @@global.time_zone").await.as_deref(),
        Some("+05:30")
    );
    assert_eq!(
        scalar(&r, "SELECT @@global.time_zone").await.as_deref(),
        Some("-03:00")
    );
    let (cm, cr) = (cells(&m).await, cells(&r).await);
    assert!(cm["fid.types"].len() >= 14, "{:?}", cm.keys());
    assert_maps_equal("cells", &cm, &cr);
    // Spot checks that the comparison sees what it should (values as the master has them).
    // A FLOAT holds -0 (an underflow); MariaDB stores a DOUBLE -0 as +0 on both sides.
    for a in [&m, &r] {
        assert_eq!(
            scalar(
                a,
                "SELECT CONCAT(f = 0, ATAN2(f, -1) < 0) FROM fid.types WHERE id = 1"
            )
            .await
            .as_deref(),
            Some("11")
        );
    }
    assert_eq!(
        scalar(&r, "SELECT HEX(lat) FROM fid.types WHERE id = 30").await,
        Some(latin.clone())
    );
    assert_eq!(
        scalar(
            &r,
            "SELECT CONCAT(ST_SRID(g), ' ', ST_SRID(pt)) FROM fid.types WHERE id = 1"
        )
        .await
        .as_deref(),
        Some("4326 0")
    );
    assert_eq!(
        scalar(&r, "SELECT UNIX_TIMESTAMP(ts) FROM fid.types WHERE id = 1")
            .await
            .as_deref(),
        Some("2147483647.999999")
    );
    assert_eq!(
        scalar(&r, "SELECT hid FROM obj.gen WHERE id = 3")
            .await
            .as_deref(),
        Some("7")
    );

    let (om, or) = (objects(&m).await, objects(&r).await);
    assert!(
        om.keys().any(|k| k.starts_with("SEQUENCE")),
        "{:?}",
        om.keys()
    );
    assert_maps_equal("objects", &om, &or);
    // Enabled events must not run on the replica; disabled ones stay disabled.
    let status_sql =
        "SELECT EVENT_SCHEMA, EVENT_NAME, STATUS FROM information_schema.EVENTS ORDER BY 1, 2";
    let mut want = query(&m, status_sql).await;
    assert_eq!(want.len(), 4, "{want:?}");
    for row in &mut want {
        if row[2].as_deref() == Some("ENABLED") {
            row[2] = Some("SLAVESIDE_DISABLED".into());
        }
    }
    assert!(want.iter().any(|r| r[2].as_deref() == Some("DISABLED")));
    assert_eq!(query(&r, status_sql).await, want);

    let (gm, gr) = (grants(&m).await, grants(&r).await);
    assert!(gm.contains_key("'fiduser'@'%'"), "{:?}", gm.keys());
    assert_eq!(gm.contains_key("'ed'@'%'"), ed);
    assert_maps_equal("accounts", &gm, &gr);

    // Copied users log in to the replica with their passwords and get their roles.
    let login = r.clone().user("fiduser").password(Some("Fid-pw-1".into()));
    let mut s = Session::open(&login)
        .await
        .expect("fiduser logs in to the replica");
    let row = s
        .first_row("SELECT CURRENT_USER(), CURRENT_ROLE()", "who")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row[0].1.as_deref(), Some("fiduser@%"));
    assert_eq!(row[1].1.as_deref(), Some("fid admin"));
    s.exec("SELECT * FROM obj.gen", "reading through the role")
        .await
        .expect("the role's grant works");
    if ed {
        let out = std::process::Command::new("mariadb")
            .args([
                "-h127.0.0.1",
                &format!("-P{}", p.replica.port()),
                "-ued",
                "-pEd-pw-1",
                "-N",
                "-e",
                "SELECT CURRENT_USER()",
            ])
            .output()
            .expect("the mariadb client runs");
        assert!(
            out.status.success(),
            "ed25519 login: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ed@%");
    }
}

/// A copier that checks the replica right after the copy, before replication applies
/// anything, and counts the chunks (one progress event each).
struct CheckedCopy {
    inner: LogicalCopy,
    replica: ServerAddr,
    bank_sum: Mutex<Option<String>>,
    chunks: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl DataCopier for CheckedCopy {
    async fn copy(&self, events: Arc<dyn EventSink>) -> Result<CopyReport, BoxError> {
        let chunks = self.chunks.clone();
        let counting = move |e: &Event| {
            if matches!(e, Event::Progress { .. }) {
                chunks.fetch_add(1, Ordering::Relaxed);
            }
            events.emit(e);
        };
        let report = self.inner.copy(Arc::new(counting)).await?;
        let sum = scalar(&self.replica, "SELECT SUM(balance) FROM bank.accounts").await;
        *self.bank_sum.lock().unwrap() = sum;
        Ok(report)
    }
}

/// Tables versioned by transaction id are refused before anything changes; then, with the bank
/// writer and a MyISAM writer committing during the copy and chunks forced small, the
/// replica's bank sum right after the copy (before replication) is the constant, and
/// after catch-up every table equals the master's — including sparse, negative, huge
/// and single-row key ranges (no row lost or duplicated between chunks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_under_writes_with_many_chunks() {
    let p = pair(|o| o, |o| o).await;
    let (m, r) = (p.master.addr(), p.replica.addr());
    create_bank(&m, "bank", 2000).await;
    exec(
        &m,
        &[
            "CREATE TABLE bank.journal (id INT AUTO_INCREMENT PRIMARY KEY, n INT, note VARCHAR(20)) ENGINE=MyISAM",
            "CREATE DATABASE chunk",
            "CREATE TABLE chunk.sparse (id BIGINT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB",
            "INSERT INTO chunk.sparse VALUES (-9223372036854775808, 'min'), (-1000000000000000000, 'a'), (-5, 'b'), \
             (0, 'zero'), (9223372036854775807, 'max'), (9223372036854775806, 'max-1'), (1000000000000000, 'c')",
            "INSERT INTO chunk.sparse SELECT seq * 1000003, REPEAT('x', 150) FROM chunk.seq_1_to_3000",
            "CREATE TABLE chunk.uns (id BIGINT UNSIGNED PRIMARY KEY, v TEXT) ENGINE=InnoDB",
            "INSERT INTO chunk.uns VALUES (0, 'zero'), (18446744073709551615, 'max'), (9223372036854775808, 'mid')",
            "INSERT INTO chunk.uns SELECT seq * 4611686018427387, REPEAT('y', 100) FROM chunk.seq_1_to_2000",
            "CREATE TABLE chunk.single (id BIGINT PRIMARY KEY, v TEXT) ENGINE=InnoDB",
            "INSERT INTO chunk.single VALUES (-42, 'only')",
            "CREATE TABLE chunk.tiny (id TINYINT PRIMARY KEY, v TEXT) ENGINE=InnoDB",
            "INSERT INTO chunk.tiny SELECT CAST(seq AS SIGNED) - 128, REPEAT('z', 1000) FROM chunk.seq_0_to_255",
            "CREATE TABLE chunk.hist (id INT PRIMARY KEY, v INT, s BIGINT UNSIGNED AS ROW START INVISIBLE, \
             e BIGINT UNSIGNED AS ROW END INVISIBLE, PERIOD FOR SYSTEM_TIME (s, e)) ENGINE=InnoDB WITH SYSTEM VERSIONING",
            "INSERT INTO chunk.hist VALUES (1, 1)",
            "ANALYZE TABLE chunk.sparse, chunk.uns, chunk.tiny, bank.accounts",
        ],
    )
    .await;

    // Refused up front, naming the table and what to do; the replica is untouched.
    let opts = LogicalOptions::default().threads(2).chunk_bytes(8192);
    let refused = LogicalCopy::new(m.clone(), r.clone(), opts.clone())
        .copy(Arc::new(NoEvents))
        .await
        .expect_err("a table versioned by transaction id is refused");
    let e = refused
        .downcast_ref::<BackupError>()
        .unwrap_or_else(|| panic!("a BackupError: {refused}"));
    assert!(matches!(e, BackupError::Unsupported(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("`chunk`.`hist`") && msg.contains("transaction id"),
        "{msg}"
    );
    assert_eq!(
        scalar(&r, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('chunk', 'bank')")
            .await
            .as_deref(),
        Some("0")
    );
    exec(&m, &["DROP TABLE chunk.hist"]).await;

    // Accounts whose authentication plugin the replica lacks: refused up front too.
    let install = "INSTALL SONAME 'auth_ed25519'";
    let mut sm = Session::open(&m).await.unwrap();
    match sm.exec(install, install).await {
        Ok(()) => {
            exec(
                &m,
                &["CREATE USER edonly@'%' IDENTIFIED VIA ed25519 USING PASSWORD('Ed-pw-2')"],
            )
            .await;
            let refused = LogicalCopy::new(m.clone(), r.clone(), opts.clone())
                .copy(Arc::new(NoEvents))
                .await
                .expect_err("an account whose plugin the replica lacks is refused");
            let msg = refused.to_string();
            assert!(
                msg.contains("ed25519") && msg.contains("INSTALL SONAME 'auth_ed25519'"),
                "{msg}"
            );
            exec(&m, &["DROP USER edonly@'%'"]).await;
        }
        Err(e) => eprintln!(
            "SKIPPED sub-case missing ed25519 on the replica: the plugin cannot be installed \
             on the master: {e}"
        ),
    }
    assert_eq!(
        scalar(&r, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('chunk', 'bank')")
            .await
            .as_deref(),
        Some("0")
    );

    let writer = Writer::start(m.clone(), "bank", 2000);
    let stop = Arc::new(AtomicBool::new(false));
    let myisam = {
        let (m, stop) = (m.clone(), stop.clone());
        tokio::spawn(async move {
            let mut s = Session::open(&m).await.unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let sql = format!("INSERT INTO bank.journal (n, note) VALUES ({n}, 'w\\t{n}')");
                s.exec(&sql, "myisam writer").await.unwrap();
                if n.is_multiple_of(3) {
                    let sql = format!("UPDATE bank.journal SET note = 'u' WHERE id = {}", n / 2);
                    s.exec(&sql, "myisam writer").await.unwrap();
                }
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            n
        })
    };
    writer.wait_commits(20).await;

    let copier = CheckedCopy {
        inner: LogicalCopy::new(m.clone(), r.clone(), opts),
        replica: r.clone(),
        bank_sum: Mutex::new(None),
        chunks: Arc::new(AtomicU64::new(0)),
    };
    run_setup(&m, &r, p.master.port(), &copier).await;
    let during = writer.commits();
    writer.wait_commits(during + 30).await;
    let commits = writer.stop().await;
    stop.store(true, Ordering::Relaxed);
    let journal = myisam.await.unwrap();
    assert!(commits > during && journal > 0);

    assert_eq!(
        copier.bank_sum.lock().unwrap().clone(),
        Some(BANK_TOTAL.to_string()),
        "the copy (before replication) must be one consistent snapshot"
    );
    let chunks = copier.chunks.load(Ordering::Relaxed);
    assert!(
        chunks >= 40,
        "small chunk_bytes must force many chunks: {chunks}"
    );

    wait_caught_up(&m, &r).await;
    let (cm, cr) = (cells(&m).await, cells(&r).await);
    assert_eq!(cm["chunk.sparse"].len(), 3007);
    assert_eq!(cm["chunk.uns"].len(), 2003);
    assert_eq!(cm["chunk.single"].len(), 1);
    assert_eq!(cm["chunk.tiny"].len(), 256);
    assert_maps_equal("cells", &cm, &cr);
    assert_eq!(
        scalar(&r, "SELECT SUM(balance) FROM bank.accounts").await,
        Some(BANK_TOTAL.to_string())
    );
}
