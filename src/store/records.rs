//! The records: one table per kind (domain/spec.rs), written in one
//! transaction with the journal row (exactly once), and what some records do
//! to the equipment register (R5, R11-R13).

use super::*;

/// One batch being applied. Dropped without `commit`, nothing of it remains.
pub struct RecordTx<'a> {
    tx: db::Tx<'a>,
    pub accepted: u64,
    pub rejected: u64,
    /// The change counter (meta 'version'), read once and kept here for the
    /// transaction; written back before commit. Nothing else writes it meanwhile:
    /// SQLite holds the write lock, and every statement of ours sets `version`, so
    /// no trigger bumps it behind our back.
    version: Option<i64>,
    /// Record keys seen in this batch: in memory up to a bound, then in SQLite's
    /// temp store, so a huge batch stays flat and a normal one costs no SQL.
    seen: HashMap<&'static str, std::collections::HashSet<Box<str>>>,
    seen_count: usize,
    /// Records applied per kind, for the console's records-per-day chart.
    by_kind: std::collections::BTreeMap<&'static str, u64>,
    /// Deliver this batch's accepted records to delivered/ once committed.
    pub deliver: bool,
    /// The time its rows are stamped with (`updated_at`): the batch's, read once.
    now: String,
}

/// Keys of one batch kept in memory before the rest go to the temp store
/// (about 20 MB at most).
pub(super) const SEEN_IN_MEMORY: usize = 200_000;

/// The statements for one record kind, made once per process.
struct KindSql {
    select: String,
    insert: String,
    insert_pg: String,
    upsert: String,
}

fn kind_sql(spec: &Spec) -> &'static KindSql {
    static ALL: std::sync::OnceLock<std::collections::HashMap<&'static str, KindSql>> =
        std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| {
        crate::domain::spec::SPECS
            .iter()
            .map(|spec| {
                let cols: Vec<String> = spec.fields.iter().map(|f| column(f.name)).collect();
                let marks: Vec<String> = (1..=cols.len() + 4).map(|i| format!("?{i}")).collect();
                let sets: Vec<String> = cols
                    .iter()
                    .map(String::as_str)
                    .chain(["origin", "source_batch", "updated_at", "version"])
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect();
                let into = format!(
                    "INTO {t}({c}, origin, source_batch, updated_at, version) VALUES({m})",
                    t = spec.table,
                    c = cols.join(", "),
                    m = marks.join(", "),
                );
                let sql = KindSql {
                    select: format!(
                        "SELECT {} FROM {} WHERE {} = ?1",
                        cols.join(", "),
                        spec.table,
                        column(spec.key)
                    ),
                    upsert: format!(
                        "INSERT {into} ON CONFLICT({}) DO UPDATE SET {}",
                        column(spec.key),
                        sets.join(", ")
                    ),
                    // OR IGNORE rather than ON CONFLICT DO NOTHING: SQLite then needs
                    // no statement journal (7% of sealing). Only the key can conflict:
                    // every NOT NULL column is always bound, and a row not inserted
                    // for any other reason fails loudly on the update path.
                    insert: format!("INSERT OR IGNORE {into}"),
                    insert_pg: format!("INSERT {into} ON CONFLICT DO NOTHING"),
                };
                (spec.table, sql)
            })
            .collect()
    });
    &all[spec.table]
}

impl Store {
    /// Start applying a batch: everything goes in one transaction with its journal row.
    pub fn begin_apply(&mut self) -> Result<RecordTx<'_>> {
        let tx = self.db.begin()?;
        tx.batch(
            "CREATE TEMP TABLE IF NOT EXISTS apply_seen(kind TEXT, key TEXT, PRIMARY KEY(kind, key));
             DELETE FROM apply_seen;",
        )?;
        Ok(RecordTx {
            tx,
            accepted: 0,
            rejected: 0,
            version: None,
            seen: Default::default(),
            seen_count: 0,
            by_kind: Default::default(),
            deliver: false,
            now: now(),
        })
    }
}

impl RecordTx<'_> {
    /// Statements are prepared once and reused for every record of a batch.
    fn exec(&self, sql: &str, params: &[&dyn db::ToParam]) -> Result<u64> {
        self.tx.exec(sql, params)
    }

    fn row<T>(
        &self,
        sql: &str,
        params: &[&dyn db::ToParam],
        f: impl FnOnce(&db::Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        self.tx.opt(sql, params, f)
    }

    /// The next change number (R14 exports follow them).
    fn next_version(&mut self) -> Result<i64> {
        let v = self.peek_version()? + 1;
        self.version = Some(v);
        Ok(v)
    }

    /// The change number the next change would get, without taking it.
    fn peek_version(&mut self) -> Result<i64> {
        if let Some(v) = self.version {
            return Ok(v + 1);
        }
        let v: i64 = self
            .row(
                "SELECT value FROM meta WHERE name = 'version'",
                params![],
                |r| r.get(0),
            )?
            .unwrap_or(0);
        self.version = Some(v);
        Ok(v + 1)
    }

    /// Write the change counter back (before every commit).
    fn save_version(&self) -> Result<()> {
        if let Some(v) = self.version {
            self.exec(
                "INSERT INTO meta(name, value) VALUES('version', ?1)
                 ON CONFLICT(name) DO UPDATE SET
                   value = CASE WHEN excluded.value > meta.value THEN excluded.value ELSE meta.value END",
                params![v],
            )?;
        }
        Ok(())
    }

    /// The stored values of a record's fields, if it is stored.
    fn stored(&self, spec: &Spec, key: &str) -> Result<Option<Vec<Option<String>>>> {
        let n = spec.fields.len();
        self.row(&kind_sql(spec).select, params![key], |r| {
            (0..n).map(|i| r.get::<Option<String>>(i)).collect()
        })
    }

    /// Who a stored record came from: a peer's id, or "local".
    pub fn origin_of(&self, kind: RecordKind, key: &str) -> Result<Option<String>> {
        let spec = kind.spec();
        self.row(
            &format!(
                "SELECT origin FROM {} WHERE {} = ?1",
                spec.table,
                column(spec.key)
            ),
            params![key],
            |r| r.get(0),
        )
    }

    /// The equipment's registration data (supervision's fields, R4) as an
    /// equipment record, if the equipment is on record.
    pub fn registration_record(&self, code: &str) -> Result<Option<Record>> {
        let spec = RecordKind::Equipment.spec();
        let Some(values) = self.stored(spec, code)? else {
            return Ok(None);
        };
        let fields = spec
            .fields
            .iter()
            .zip(values)
            .filter(|(f, _)| spec.owner_of(f) == Role::Supervision)
            .filter_map(|(f, v)| v.map(|v| (f.name, v)))
            .collect();
        Ok(Some(Record {
            kind: RecordKind::Equipment,
            fields,
            warnings: Vec::new(),
        }))
    }

    fn write_row(
        &mut self,
        sql: &str,
        values: &[Option<&str>],
        origin: &str,
        batch_id: Option<&str>,
        version: i64,
    ) -> Result<u64> {
        let updated_at = self.now.as_str();
        let params: Vec<&dyn db::ToParam> = values
            .iter()
            .map(|v| v as &dyn db::ToParam)
            .chain([
                &origin as &dyn db::ToParam,
                &batch_id as &dyn db::ToParam,
                &updated_at as &dyn db::ToParam,
                &version as &dyn db::ToParam,
            ])
            .collect();
        self.tx.exec(sql, &params)
    }

    /// Store a record sent by `sender`. A field that `sender` does not own is
    /// filled where empty but never overwritten (R4); where it differs from what
    /// is stored it is returned as a discrepancy. Nothing changes (and the change
    /// counter stays) when the stored record already says the same.
    pub fn upsert(
        &mut self,
        rec: &Record,
        sender: Role,
        origin: &str,
        batch_id: Option<&str>,
    ) -> Result<Vec<Discrepancy>> {
        let spec = rec.spec();
        let sql = kind_sql(spec);
        // Most records are new: try the insert first, and read back only on conflict.
        let fresh: Vec<Option<&str>> = spec.fields.iter().map(|f| rec.get(f.name)).collect();
        let version = self.peek_version()?;
        let insert = if self.tx.is_pg() {
            &sql.insert_pg
        } else {
            &sql.insert
        };
        if self.write_row(insert, &fresh, origin, batch_id, version)? == 1 {
            self.next_version()?;
            self.effects(rec, origin, batch_id)?;
            self.count(rec.kind, 1);
            return Ok(Vec::new());
        }
        let stored = self.stored(spec, rec.key())?.unwrap_or_default();
        let mut values: Vec<Option<String>> = stored;
        values.resize(spec.fields.len(), None);
        let mut found = Vec::new();
        let mut changed = false;
        for (i, field) in spec.fields.iter().enumerate() {
            let Some(new) = rec.get(field.name) else {
                continue;
            };
            let old = values[i].as_deref();
            if old == Some(new) {
                continue;
            }
            if spec.owner_of(field) != sender && old.is_some() {
                found.push(Discrepancy {
                    kind: spec.element.to_string(),
                    key: rec.key().to_string(),
                    field: field.name.to_string(),
                    stored: old.map(str::to_string),
                    received: Some(new.to_string()),
                });
                continue;
            }
            values[i] = Some(new.to_string());
            changed = true;
        }
        if changed {
            let version = self.next_version()?;
            let values: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
            self.write_row(&sql.upsert, &values, origin, batch_id, version)?;
        }
        self.effects(rec, origin, batch_id)?;
        self.count(rec.kind, 1);
        Ok(found)
    }

    /// What some records do to the equipment register besides being stored.
    fn effects(&mut self, rec: &Record, origin: &str, batch_id: Option<&str>) -> Result<()> {
        let code = rec.get("registrationCode").unwrap_or_default();
        match rec.kind {
            RecordKind::UseRegistration => {
                // A use registration (R5, R11) is the equipment's registration data.
                let fields = rec
                    .fields
                    .iter()
                    .filter(|(k, _)| RecordKind::Equipment.spec().field(k).is_some())
                    .cloned()
                    .collect();
                let equipment = Record {
                    kind: RecordKind::Equipment,
                    fields,
                    warnings: Vec::new(),
                };
                self.upsert(&equipment, Role::Supervision, origin, batch_id)?;
                self.count(RecordKind::Equipment, -1);
            }
            RecordKind::CodeChange => {
                let (old, new) = (
                    rec.get("oldValue").unwrap_or_default(),
                    rec.get("newValue").unwrap_or_default(),
                );
                self.exec(
                    "INSERT INTO code_history(change_id, field, old_value, new_value, date) VALUES(?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(change_id) DO NOTHING",
                    params![rec.key(), rec.get("field"), old, new, rec.get("date")],
                )?;
                let version = self.next_version()?;
                if rec.get("field") == Some("registration-code") {
                    let taken: bool = self
                        .row(
                            "SELECT count(*) FROM equipment WHERE registration_code = ?1",
                            params![new],
                            |r| r.get::<i64>(0),
                        )?
                        .unwrap_or(0)
                        > 0;
                    if !taken {
                        self.exec(
                            "UPDATE equipment SET registration_code = ?2, version = ?3 WHERE registration_code = ?1",
                            params![old, new, version],
                        )?;
                    }
                } else {
                    self.exec(
                        "UPDATE equipment SET use_certificate = ?2, version = ?3 WHERE use_certificate = ?1",
                        params![old, new, version],
                    )?;
                }
            }
            RecordKind::ResponsibilityAssignment => {
                let version = self.next_version()?;
                self.exec(
                    "UPDATE equipment SET inspection_agency = ?2, version = ?3 WHERE registration_code = ?1",
                    params![code, rec.get("agency"), version],
                )?;
            }
            RecordKind::ResponsibilityChange => {
                let agency = (rec.get("action") == Some("grant"))
                    .then(|| rec.get("agency"))
                    .flatten();
                let version = self.next_version()?;
                self.exec(
                    "UPDATE equipment SET temporary_agency = ?2, version = ?3 WHERE registration_code = ?1",
                    params![code, agency, version],
                )?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Flag a report as coming from a national-level agency (R16).
    pub fn flag_national(&mut self, report_number: &str) -> Result<()> {
        self.exec(
            "UPDATE inspection_report SET national = 1 WHERE report_number = ?1",
            params![report_number],
        )?;
        Ok(())
    }

    pub fn record_discrepancy(
        &mut self,
        peer: &str,
        batch_id: Option<&str>,
        d: &Discrepancy,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO discrepancy(at, peer, batch_id, kind, key, field, stored, received) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
            params![now(), peer, batch_id, d.kind, d.key, d.field, d.stored, d.received],
        )?;
        Ok(())
    }

    /// Keep a record back until its category's exchange starts (R9).
    pub fn defer(&mut self, peer: &str, category: &str, due: &str, xml: &str) -> Result<()> {
        self.exec(
            "INSERT INTO deferred(peer, category, due, xml) VALUES(?1, ?2, ?3, ?4)",
            params![peer, category, due, xml],
        )?;
        Ok(())
    }

    pub fn bump_counter(&mut self, name: &str, by: u64) -> Result<()> {
        self.exec(
            "INSERT INTO meta(name, value) VALUES(?1, ?2) ON CONFLICT(name) DO UPDATE SET value = meta.value + ?2",
            params![name, by],
        )?;
        Ok(())
    }

    /// Remember that a dropped file's content was sifted (its effects are stored).
    pub fn note_drop(&mut self, tag: &str) -> Result<()> {
        self.exec(
            "INSERT INTO meta(name, value) VALUES(?1, 1) ON CONFLICT(name) DO NOTHING",
            params![format!("drop:{tag}")],
        )?;
        Ok(())
    }

    /// Note an accepted record of a batch to be delivered (`deliver = "folder"`).
    pub fn note_for_delivery(&mut self, batch_id: &str, index: u64, rec: &Record) -> Result<()> {
        if self.deliver {
            self.exec(
                "INSERT INTO delivery_record(batch_id, idx, kind, key) VALUES(?1, ?2, ?3, ?4)
                 ON CONFLICT(batch_id, idx) DO NOTHING",
                params![batch_id, index, rec.kind.element(), rec.key()],
            )?;
        }
        Ok(())
    }

    /// One more (or, for a record's side effect, one fewer) record applied.
    fn count(&mut self, kind: RecordKind, n: i64) {
        self.accepted = self.accepted.saturating_add_signed(n);
        let c = self.by_kind.entry(kind.element()).or_default();
        *c = c.saturating_add_signed(n);
    }

    /// Add this transaction's records to the day's counts ("in": received from
    /// peers, "out": this node's own, to be sent).
    fn save_daily(&self, direction: &str) -> Result<()> {
        let day = crate::context::clock::shanghai_day();
        for (kind, n) in self.by_kind.iter().filter(|(_, n)| **n > 0) {
            self.exec(
                "INSERT INTO daily_records(day, direction, kind, records) VALUES(?1, ?2, ?3, ?4)
                 ON CONFLICT(day, direction, kind) DO UPDATE SET records = daily_records.records + excluded.records",
                params![day, direction, kind, n],
            )?;
        }
        Ok(())
    }

    /// Commit a transaction that journals no batch (this node's own records).
    pub fn commit_local(self) -> Result<()> {
        self.save_daily("out")?;
        self.save_version()?;
        self.tx.commit()?;
        Ok(())
    }

    /// True the first time a record key is seen in this batch (kept in SQLite's
    /// temp store, not in memory, so a huge batch stays flat).
    pub fn first_in_batch(&mut self, kind: &'static str, key: &str) -> Result<bool> {
        let keys = self.seen.entry(kind).or_default();
        if keys.contains(key) {
            return Ok(false);
        }
        if self.seen_count < SEEN_IN_MEMORY {
            keys.insert(Box::from(key));
            self.seen_count += 1;
            return Ok(true);
        }
        let n = self.exec(
            "INSERT INTO apply_seen(kind, key) VALUES(?1, ?2) ON CONFLICT DO NOTHING",
            params![kind, key],
        )?;
        Ok(n == 1)
    }

    pub fn reject(&mut self, batch_id: &str, rej: &RecordRejection) -> Result<()> {
        self.exec(
            "INSERT INTO record_result(batch_id, idx, key, code, message) VALUES(?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(batch_id, idx) DO UPDATE SET key = excluded.key, code = excluded.code,
               message = excluded.message",
            params![batch_id, rej.index, rej.key, rej.code, rej.message],
        )?;
        self.rejected += 1;
        Ok(())
    }

    /// Write the journal row, advance the channel and commit, all at once.
    pub fn commit(self, entry: &JournalEntry) -> Result<()> {
        self.exec(
            "INSERT INTO journal(batch_id, peer, seq, set_name, sha256, status, accepted, rejected,
               reason_code, reason_detail, received_at, acks_sent, arrived_at)
             VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,0,?12)",
            params![
                entry.batch_id,
                entry.peer,
                entry.seq,
                entry.set_name,
                entry.sha256,
                entry.status.as_str(),
                entry.accepted,
                entry.rejected,
                entry.reason_code,
                entry.reason_detail,
                now(),
                entry.arrived_at
            ],
        )?;
        self.exec(
            "INSERT INTO channel_in(peer, last_seq) VALUES(?1, ?2)
             ON CONFLICT(peer) DO UPDATE SET last_seq =
               CASE WHEN excluded.last_seq > channel_in.last_seq THEN excluded.last_seq ELSE channel_in.last_seq END",
            params![entry.peer, entry.seq],
        )?;
        self.exec(
            "DELETE FROM held WHERE peer = ?1 AND set_name = ?2",
            params![entry.peer, entry.set_name],
        )?;
        if self.deliver && entry.accepted > 0 {
            self.exec(
                "INSERT INTO delivery(batch_id, peer, seq, file, state, at) VALUES(?1, ?2, ?3, ?4, 'pending', ?5)
                 ON CONFLICT(batch_id) DO NOTHING",
                params![
                    entry.batch_id,
                    entry.peer,
                    entry.seq,
                    format!("{}-{:08}-{}.xml", entry.peer, entry.seq, entry.batch_id),
                    now()
                ],
            )?;
        }
        if self.tx.is_pg() {
            // Local systems that LISTEN sedx_applied hear of the batch as it commits.
            let payload = serde_json::json!({
                "batch": entry.batch_id,
                "peer": entry.peer,
                "seq": entry.seq,
                "accepted": entry.accepted,
            })
            .to_string();
            self.tx.one(
                "SELECT 1 FROM (SELECT pg_notify('sedx_applied', ?1)) AS n",
                params![payload],
                |_| Ok(()),
            )?;
        }
        self.save_daily("in")?;
        self.save_version()?;
        self.tx.commit()?;
        Ok(())
    }
}

impl Register for RecordTx<'_> {
    fn responsibility(&mut self, registration_code: &str) -> Result<Option<Responsibility>> {
        self.row(
                "SELECT inspection_agency, temporary_agency FROM equipment WHERE registration_code = ?1",
                params![registration_code],
                |r| Ok(Responsibility { agency: r.get(0)?, temporary: r.get(1)? }),
            )
    }
}
