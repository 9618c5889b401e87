use super::*;

const T: Expected<'static> = Expected::Table { db: "d", name: "t" };

fn ok(sql: &str, e: &Expected<'_>) -> String {
    match check(sql, e) {
        Ok(s) => s.to_string(),
        Err(err) => panic!("{sql:?} must pass as {e}: {err}"),
    }
}

fn refused(sql: &str, e: &Expected<'_>) -> StatementError {
    match check(sql, e) {
        Ok(s) => panic!("{sql:?} must be refused as {e}, passed as {s:?}"),
        Err(err) => err,
    }
}

#[test]
fn real_show_create_table_output_passes() {
    let sql = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `v` varchar(20) DEFAULT 'a;b' COMMENT 'it''s \\'quoted\\'; -- not a comment',\n  PRIMARY KEY (`id`),\n  KEY `k` (`v`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci";
    assert_eq!(ok(sql, &T), sql);
    // MySQL's partition clause in an executable comment, trailing `;` and whitespace.
    let sql = "CREATE TABLE `t` (`id` int) /*!50100 PARTITION BY HASH (`id`) PARTITIONS 4 */;  \n";
    assert_eq!(
        ok(sql, &T),
        "CREATE TABLE `t` (`id` int) /*!50100 PARTITION BY HASH (`id`) PARTITIONS 4 */"
    );
    ok("create table d.t (a int)", &T);
    ok(
        "CREATE TABLE IF NOT EXISTS `d`.`t` (a int) -- trailing comment",
        &T,
    );
    ok("/* leading */ CREATE TABLE `t` (a int) # hash comment", &T);
    ok("CREATE OR REPLACE TABLE \"t\" (a int)", &T);
}

#[test]
fn semicolons_in_quotes_and_comments_are_not_separators() {
    ok(
        "CREATE TABLE `t;x` (a int)",
        &Expected::Table {
            db: "d",
            name: "t;x",
        },
    );
    ok("CREATE TABLE t (a int COMMENT 'x; CREATE DATABASE y')", &T);
    ok("CREATE TABLE t (a int COMMENT \"x; y\")", &T);
    ok("CREATE TABLE t (a int) /* ; DROP DATABASE d */", &T);
    ok("CREATE TABLE t (a int) -- ; DROP DATABASE d", &T);
    ok("CREATE TABLE t (a int) # ; DROP DATABASE d", &T);
}

#[test]
fn a_second_statement_is_refused() {
    for sql in [
        "CREATE TABLE t (a int); CREATE DATABASE x",
        "CREATE TABLE t (a int);CREATE DATABASE x;",
        "CREATE TABLE t (a int);;",
        "CREATE TABLE t (a int) COMMENT 'x'; CREATE DATABASE x",
        // `--` without a space is not a comment: the `;` after it counts.
        "CREATE TABLE t (a int) --; CREATE DATABASE x",
        // A `;` inside an executable comment is code.
        "CREATE TABLE t (a int) /*!50000 ; CREATE DATABASE x */",
        "CREATE TABLE t (a int) /*M!100100 ; CREATE DATABASE x */",
    ] {
        assert!(
            matches!(refused(sql, &T), StatementError::Several { .. }),
            "{sql}"
        );
    }
}

#[test]
fn backslash_tricks_are_refused_in_some_sql_mode() {
    // With backslash escapes the `;` is inside the string; with NO_BACKSLASH_ESCAPES
    // (which the image's own sql_mode could set) it is not.
    let e = refused(
        "CREATE TABLE t (a int COMMENT 'x\\'; CREATE DATABASE x; -- ')",
        &T,
    );
    assert!(matches!(e, StatementError::Several { .. }), "{e}");
    let e = refused(
        "CREATE TABLE t (a int COMMENT \"x\\\"; CREATE DATABASE x; -- \")",
        &T,
    );
    assert!(matches!(e, StatementError::Several { .. }), "{e}");
    // Doubled quotes and escaped backslashes read the same in every mode.
    ok("CREATE TABLE t (a int COMMENT 'a\\\\b''c')", &T);
}

#[test]
fn unterminated_text_is_refused() {
    for (sql, what) in [
        ("CREATE TABLE t (a int COMMENT 'x)", "string"),
        ("CREATE TABLE `t (a int)", "quoted name"),
        ("CREATE TABLE t (a int) /* open", "comment"),
        (
            "CREATE TABLE t (a int) /*!50000 ENGINE=InnoDB",
            "executable comment",
        ),
    ] {
        assert_eq!(
            refused(sql, &T),
            StatementError::Unterminated(what),
            "{sql}"
        );
    }
    assert_eq!(refused("  -- nothing\n", &T), StatementError::Empty);
}

#[test]
fn executable_comments_cannot_decide_kind_or_name() {
    for sql in [
        "CREATE /*!99999 DATABASE x */ TABLE t (a int)",
        "CREATE TABLE /*!50000 t */ (a int)",
        "/*!50000 CREATE TABLE t (a int) */",
    ] {
        assert!(
            matches!(
                refused(sql, &T),
                StatementError::Forbidden(_) | StatementError::WrongKind { .. }
            ),
            "{sql}"
        );
    }
    // Nested comments inside an executable one are not read the same by every server.
    assert!(matches!(
        refused("CREATE TABLE t (a int) /*!50000 /* x */ */", &T),
        StatementError::Forbidden(_)
    ));
    // `IF NOT EXISTS` may come from one (mysqldump writes it so).
    ok(
        "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `d` /*!40100 DEFAULT CHARACTER SET utf8mb4 */",
        &Expected::Database("d"),
    );
}

#[test]
fn kind_and_name_must_match() {
    assert!(matches!(
        refused("CREATE TABLE other (a int)", &T),
        StatementError::WrongName { .. }
    ));
    assert!(matches!(
        refused("CREATE TABLE `e`.`t` (a int)", &T),
        StatementError::WrongName { .. }
    ));
    assert!(matches!(
        refused("CREATE TABLE `T` (a int)", &T),
        StatementError::WrongName { .. }
    ));
    for sql in [
        "DROP TABLE t",
        "CREATE DATABASE t",
        "CREATE TEMPORARY TABLE t (a int)",
        "CREATE VIEW t AS SELECT 1",
        "SET GLOBAL read_only = 0",
        "DELIMITER //",
    ] {
        assert!(
            matches!(refused(sql, &T), StatementError::WrongKind { .. }),
            "{sql}"
        );
    }
    // A backtick inside a quoted name.
    ok(
        "CREATE TABLE `odd``name` (a int)",
        &Expected::Table {
            db: "d",
            name: "odd`name",
        },
    );
    assert!(matches!(
        refused("CREATE TABLE t SELECT * FROM mysql.user", &T),
        StatementError::Forbidden(_)
    ));
}

#[test]
fn databases() {
    let d = Expected::Database("shop");
    ok(
        "CREATE DATABASE `shop` /*!40100 DEFAULT CHARACTER SET latin1 COLLATE latin1_swedish_ci */",
        &d,
    );
    ok("CREATE SCHEMA shop", &d);
    assert!(matches!(
        refused("CREATE DATABASE `x`", &d),
        StatementError::WrongName { .. }
    ));
    assert!(matches!(
        refused("CREATE DATABASE `shop`; CREATE DATABASE x", &d),
        StatementError::Several { .. }
    ));
}

#[test]
fn sequences() {
    let s = Expected::Sequence { db: "d", name: "s" };
    ok("CREATE SEQUENCE `s` start with 1 minvalue 1 maxvalue 9223372036854775806 increment by 1 cache 1000 nocycle ENGINE=InnoDB", &s);
    ok(
        "CREATE TABLE `s` (`next_not_cached_value` bigint(21) NOT NULL) ENGINE=InnoDB SEQUENCE=1",
        &s,
    );
    assert!(matches!(
        refused("CREATE SEQUENCE s", &T),
        StatementError::WrongKind { .. }
    ));
}

fn obj(kind: ObjectKeyword, name: &str) -> Expected<'_> {
    Expected::Object {
        kind,
        db: "d",
        name,
    }
}

#[test]
fn views_and_routines() {
    let v = obj(ObjectKeyword::View, "cheap");
    ok("CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `cheap` AS select `shop`.`items`.`id` AS `id` from `shop`.`items` where `shop`.`items`.`price` < 10", &v);
    assert!(matches!(
        refused("CREATE VIEW `cheap` AS select 1; CREATE DATABASE x", &v),
        StatementError::Several { .. }
    ));
    assert!(matches!(
        refused("CREATE VIEW `other` AS select 1", &v),
        StatementError::WrongName { .. }
    ));

    let p = obj(ObjectKeyword::Procedure, "p");
    // A body with `;` inside BEGIN … END is one statement (the server delimits it).
    let body = "CREATE DEFINER=`root`@`localhost` PROCEDURE `p`(IN a INT)\nBEGIN\n  DECLARE x INT;\n  SET x = a; -- ;;\n  SELECT x;\nEND";
    assert_eq!(ok(body, &p), body);
    ok("CREATE DEFINER=CURRENT_USER() PROCEDURE P() SELECT 1", &p);
    assert!(matches!(
        refused("CREATE PROCEDURE q() SELECT 1", &p),
        StatementError::WrongName { .. }
    ));
    assert!(matches!(
        refused("CREATE FUNCTION p() RETURNS INT RETURN 1", &p),
        StatementError::WrongKind { .. }
    ));
    // Still lexed: an unterminated string is refused.
    assert!(matches!(
        refused("CREATE PROCEDURE p() SELECT 'x", &p),
        StatementError::Unterminated(_)
    ));
    ok(
        "CREATE DEFINER=`root`@`localhost` AGGREGATE FUNCTION `f`(x INT) RETURNS int(11) BEGIN RETURN 1; END",
        &obj(ObjectKeyword::Function, "f"),
    );
    ok(
        "CREATE DEFINER=`root`@`localhost` TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW SET NEW.a = NEW.a + 1",
        &obj(ObjectKeyword::Trigger, "tr"),
    );
    ok(
        "CREATE DEFINER=`root`@`localhost` EVENT `e` ON SCHEDULE EVERY 1 HOUR STARTS '2026-01-01 00:00:00' ON COMPLETION NOT PRESERVE ENABLE DO INSERT INTO t VALUES (1)",
        &obj(ObjectKeyword::Event, "e"),
    );
    assert!(matches!(
        refused(
            "CREATE DEFINER=`root`@`localhost` EVENT `d`.`other` ON SCHEDULE EVERY 1 HOUR DO SELECT 1",
            &obj(ObjectKeyword::Event, "e")
        ),
        StatementError::WrongName { .. }
    ));
}

#[test]
fn accounts_and_grants() {
    let u = Expected::User {
        user: "app",
        host: "%",
    };
    ok("CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*1234'", &u);
    ok("CREATE USER 'app'@'%'", &u);
    assert!(matches!(
        refused("CREATE USER `root`@`%` IDENTIFIED BY 'x'", &u),
        StatementError::WrongName { .. }
    ));
    assert!(matches!(
        refused("CREATE USER `app`@`%`, `evil`@`%`", &u),
        StatementError::Forbidden(_)
    ));
    ok("CREATE ROLE 'r'", &Expected::Role("r"));

    let g = Expected::Grant {
        user: "app",
        host: Some("%"),
    };
    ok(
        "GRANT SELECT, INSERT (`a`, `to`) ON `shop`.* TO `app`@`%`",
        &g,
    );
    ok(
        "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*AB'",
        &g,
    );
    ok("GRANT `r` TO `app`@`%` WITH ADMIN OPTION", &g);
    ok("SET DEFAULT ROLE `r` FOR `app`@`%`", &g);
    ok("REVOKE INSERT ON `mysql`.* FROM `app`@`%`", &g);
    ok(
        "GRANT USAGE ON *.* TO `r`",
        &Expected::Grant {
            user: "r",
            host: None,
        },
    );
    assert!(matches!(
        refused("GRANT ALL ON *.* TO `evil`@`%`", &g),
        StatementError::WrongName { .. }
    ));
    assert!(matches!(
        refused("GRANT ALL ON *.* TO `app`@`%`, `evil`@`%`", &g),
        StatementError::Forbidden(_)
    ));
    assert!(matches!(
        refused("GRANT SELECT ON *.* TO `app`@`%`; CREATE DATABASE x", &g),
        StatementError::Several { .. }
    ));
    assert!(matches!(
        refused("SET GLOBAL x = 1", &g),
        StatementError::WrongKind { .. }
    ));
}

#[test]
fn alter_table() {
    let a = Expected::AlterTable { db: "d", name: "t" };
    ok(
        "ALTER TABLE `d`.`t` ADD KEY `k` (`v`), ADD UNIQUE KEY `u` (`w`)",
        &a,
    );
    assert!(matches!(
        refused(
            "ALTER TABLE `d`.`t` ADD KEY `k` (`v`); CREATE DATABASE x; -- ",
            &a
        ),
        StatementError::Several { .. }
    ));
}

#[test]
fn is_single_counts_statements() {
    assert!(is_single("SELECT 1"));
    assert!(is_single("SELECT ';'; "));
    assert!(!is_single("SELECT 1; CREATE DATABASE x"));
    assert!(!is_single("BEGIN SELECT 1; END"));
    assert!(!is_single("SELECT 'x"));
    assert!(!is_single(""));
}

#[test]
fn parameter_markers_are_found_outside_quotes() {
    assert!(has_parameter_markers("CREATE PROCEDURE p() l1:begin end"));
    assert!(has_parameter_markers("SELECT ?"));
    assert!(!has_parameter_markers("CREATE PROCEDURE p() l1: begin end"));
    assert!(!has_parameter_markers("CREATE PROCEDURE p() L1:BEGIN END"));
    assert!(!has_parameter_markers(
        "SELECT 'a:b?', `c:d`, @x:=1 -- :x ?"
    ));
    assert!(has_parameter_markers("SELECT 'unterminated"));
}
