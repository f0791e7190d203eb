"""The per-sensor tables both stores share: alerts per sensor, minute and type
(`sensor_minutes`), alerts per attacking source, sensor and type (`source_activity`, the
incidents view), alerts per sensor and source (`sensor_sources`: a sensor's top sources and
its incidents, by index), and each sensor's last two stats events (`sensors`, its health)."""

ROLLUP_TABLES = """
CREATE TABLE sensor_minutes (sensor TEXT NOT NULL, minute BIGINT NOT NULL, type TEXT NOT NULL, count BIGINT NOT NULL,
                             PRIMARY KEY (sensor, minute, type));
CREATE TABLE source_activity (src_ip TEXT NOT NULL, sensor TEXT NOT NULL, type TEXT NOT NULL, count BIGINT NOT NULL,
                              first_ts DOUBLE PRECISION NOT NULL, last_ts DOUBLE PRECISION NOT NULL,
                              PRIMARY KEY (src_ip, sensor, type));
CREATE INDEX source_activity_last ON source_activity(last_ts);
CREATE INDEX source_activity_sensor ON source_activity(sensor, last_ts);
CREATE TABLE sensors (sensor TEXT PRIMARY KEY, first_seen DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION NOT NULL,
                      record TEXT NOT NULL, prev_seen DOUBLE PRECISION, prev_record TEXT);
"""

# SQLite: the sensor column is generated from the record's EVE `host`; the writer adds each
# batch to the per-sensor roll-ups (rollups.sensor_upserts), a trigger takes deleted alerts
# out of them (retention), and one keeps each sensor's last two stats events.
SQLITE_SENSORS = ROLLUP_TABLES + """
ALTER TABLE alerts ADD COLUMN sensor TEXT GENERATED ALWAYS AS (coalesce(json_extract(record, '$.host'), '')) VIRTUAL;
CREATE INDEX alerts_sensor ON alerts(sensor, id);
ALTER TABLE stats ADD COLUMN sensor TEXT GENERATED ALWAYS AS (coalesce(json_extract(record, '$.host'), '')) VIRTUAL;
CREATE INDEX stats_sensor ON stats(sensor, id);
INSERT INTO sensor_minutes SELECT sensor, CAST(ts / 60 AS INTEGER), type, count(*) FROM alerts WHERE muted = 0
    GROUP BY 1, 2, 3;
INSERT INTO source_activity SELECT src_ip, sensor, type, count(*), min(ts), max(ts) FROM alerts
    WHERE muted = 0 AND src_ip IS NOT NULL GROUP BY 1, 2, 3;
INSERT INTO sensors (sensor, first_seen, last_seen, record)
    SELECT s.sensor, f.first, s.ts, s.record FROM stats s
    JOIN (SELECT sensor, max(id) AS id, min(ts) AS first FROM stats GROUP BY sensor) f ON s.id = f.id;
CREATE TRIGGER alerts_sensor_retention AFTER DELETE ON alerts WHEN OLD.muted = 0 BEGIN
    UPDATE sensor_minutes SET count = count - 1
        WHERE sensor = OLD.sensor AND minute = CAST(OLD.ts / 60 AS INTEGER) AND type = OLD.type;
    UPDATE source_activity SET count = count - 1 WHERE src_ip = OLD.src_ip AND sensor = OLD.sensor AND type = OLD.type;
END;
CREATE TRIGGER stats_sensors AFTER INSERT ON stats BEGIN
    INSERT INTO sensors VALUES (NEW.sensor, NEW.ts, NEW.ts, NEW.record, NULL, NULL)
        ON CONFLICT (sensor) DO UPDATE SET prev_seen = last_seen, prev_record = record,
        last_seen = excluded.last_seen, record = excluded.record;
END;
"""

SENSOR_UPSERT = ("INSERT INTO sensors (sensor, first_seen, last_seen, record) VALUES (?,?,?,?) ON CONFLICT (sensor) "
                 "DO UPDATE SET prev_seen = sensors.last_seen, prev_record = sensors.record, "
                 "last_seen = excluded.last_seen, record = excluded.record")

# Both stores, second step: per-sensor sources by index (top sources and incidents of one
# sensor were a scan of source_activity), the fleet's incidents by alert_sources' last_ts.
SENSOR_SOURCES = """
DROP INDEX source_activity_last;
DROP INDEX source_activity_sensor;
CREATE TABLE sensor_sources (sensor TEXT NOT NULL, src_ip TEXT NOT NULL, count BIGINT NOT NULL,
                             last_ts DOUBLE PRECISION NOT NULL, PRIMARY KEY (sensor, src_ip));
CREATE INDEX sensor_sources_count ON sensor_sources(sensor, count);
CREATE INDEX sensor_sources_last ON sensor_sources(sensor, last_ts);
CREATE INDEX alert_sources_last ON alert_sources(last_ts);
INSERT INTO sensor_sources SELECT sensor, src_ip, sum(count), max(last_ts) FROM source_activity GROUP BY 1, 2;
"""

SQLITE_SENSOR_SOURCES = SENSOR_SOURCES + """
CREATE TRIGGER alerts_sensor_sources_retention AFTER DELETE ON alerts WHEN OLD.muted = 0 BEGIN
    UPDATE sensor_sources SET count = count - 1 WHERE sensor = OLD.sensor AND src_ip = OLD.src_ip;
END;
"""

# Both stores, third step: sources are attackers (alert.source.ip, else src_ip); the fleet's
# incidents come from sensor_sources (queries.py merges the sensors' heads by last_ts), so
# alert_sources keeps only its count index (one index write fewer per new source in a
# storm); per-sensor totals by type; country / AS terms.
ATTACKER_REBUILD = """
DELETE FROM source_activity;
INSERT INTO source_activity SELECT attacker, sensor, type, count(*), min(ts), max(ts) FROM alerts
    WHERE muted = 0 AND attacker IS NOT NULL GROUP BY 1, 2, 3;
DELETE FROM sensor_sources;
INSERT INTO sensor_sources SELECT sensor, src_ip, sum(count), max(last_ts) FROM source_activity GROUP BY 1, 2;
DROP INDEX alert_sources_last;
DELETE FROM alert_sources;
INSERT INTO alert_sources SELECT src_ip, sum(count), max(last_ts) FROM source_activity GROUP BY 1;
INSERT INTO sensor_types SELECT sensor, type, count(*) FROM alerts WHERE muted = 0 GROUP BY 1, 2;
"""
