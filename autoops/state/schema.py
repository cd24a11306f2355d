"""The state schema and its migrations, in order: ``PRAGMA user_version`` counts those applied.

A new column or table is a new entry at the end of ``MIGRATIONS``; entries are never edited.
"""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    pid_start TEXT NOT NULL,
    env TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    started TEXT NOT NULL,
    status TEXT NOT NULL,
    data_dir TEXT
);
CREATE TABLE IF NOT EXISTS host_cache (
    key TEXT PRIMARY KEY,
    hosts TEXT NOT NULL,
    used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS host_locks (
    env TEXT NOT NULL,
    host TEXT NOT NULL,
    run_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_start TEXT NOT NULL,
    acquired TEXT NOT NULL,
    PRIMARY KEY (env, host)
);
CREATE TABLE IF NOT EXISTS grants (
    grant_id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    token TEXT NOT NULL,
    expires TEXT NOT NULL,
    max_uses INTEGER,
    recorded TEXT NOT NULL,
    revoked TEXT,
    revoked_by TEXT,
    revoke_reason TEXT
);
CREATE TABLE IF NOT EXISTS grant_uses (
    grant_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    used TEXT NOT NULL,
    PRIMARY KEY (grant_id, run_id)
);
CREATE TABLE IF NOT EXISTS approval_requests (
    request_id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    action TEXT NOT NULL,
    requester TEXT NOT NULL,
    plan_digest TEXT NOT NULL,
    plan TEXT NOT NULL,
    created TEXT NOT NULL,
    expires TEXT NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT,
    decided TEXT,
    reason TEXT,
    used_by TEXT
);
CREATE TABLE IF NOT EXISTS halts (
    scope TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_anchor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
"""

# Schema changes after the first wave, applied in order (PRAGMA user_version counts them).
MIGRATIONS = (
    # 1: the first wave's tables (a database made before versioning already has them)
    SCHEMA,
    # 2: a run's worker process, so that a later autoops can kill it if this one is
    #    killed; halts may be engaged against one actor (the agent they are meant to stop)
    """
    ALTER TABLE runs ADD COLUMN worker_pid INTEGER;
    ALTER TABLE runs ADD COLUMN worker_start TEXT;
    CREATE TABLE halts_v2 (
        scope TEXT NOT NULL,
        reason TEXT NOT NULL,
        actor TEXT NOT NULL,
        since TEXT NOT NULL,
        against TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (scope, against)
    );
    INSERT INTO halts_v2 (scope, reason, actor, since) SELECT scope, reason, actor, since FROM halts;
    DROP TABLE halts;
    ALTER TABLE halts_v2 RENAME TO halts;
    """,
    # 3: host locks keyed by the machine a host reaches (address:port, or "local"), so
    #    that one machine cannot be changed from two environments at once
    """
    DROP TABLE host_locks;
    CREATE TABLE host_locks (
        address TEXT PRIMARY KEY,
        env TEXT NOT NULL,
        host TEXT NOT NULL,
        run_id TEXT NOT NULL,
        actor TEXT NOT NULL,
        pid INTEGER NOT NULL,
        pid_start TEXT NOT NULL,
        acquired TEXT NOT NULL
    );
    """,
    # 4: findings with memory (autoops.watch.findings), one per check and subject
    """
    CREATE TABLE findings (
        finding_id TEXT PRIMARY KEY,
        env TEXT NOT NULL,
        host TEXT NOT NULL,
        check_name TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        updated TEXT NOT NULL,
        UNIQUE (env, host, check_name, subject)
    );
    """,
    # 5: the notification outbox: a message is kept (per channel) until delivered
    """
    CREATE TABLE outbox (
        message_key TEXT NOT NULL,
        channel TEXT NOT NULL,
        env TEXT NOT NULL,
        body TEXT NOT NULL,
        created TEXT NOT NULL,
        parts_sent INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        delivered TEXT,
        PRIMARY KEY (message_key, channel)
    );
    """,
    # 6: what watch remembers between runs to see restart loops (autoops.watch.restarts)
    """
    CREATE TABLE watch_samples (
        env TEXT NOT NULL,
        host TEXT NOT NULL,
        series TEXT NOT NULL,
        body TEXT NOT NULL,
        updated TEXT NOT NULL,
        PRIMARY KEY (env, host, series)
    );
    """,
    # 7: counters behind `autoops metrics` (autoops.state.runstats), which must survive
    #    the process: every finished guarded run by (action, env, exit status), with its
    #    durations as histogram bucket counts (JSON), and every completed watch run
    """
    CREATE TABLE run_stats (
        action TEXT NOT NULL,
        env TEXT NOT NULL,
        exit_status INTEGER NOT NULL,
        count INTEGER NOT NULL,
        seconds REAL NOT NULL,
        buckets TEXT NOT NULL,
        PRIMARY KEY (action, env, exit_status)
    );
    CREATE TABLE watch_stats (
        env TEXT NOT NULL,
        exit_status INTEGER NOT NULL,
        count INTEGER NOT NULL,
        last_ended REAL NOT NULL,
        PRIMARY KEY (env, exit_status)
    );
    """,
    # 8: self-healing attempts (autoops.state.heals): one row per runbook applied to one
    #    finding, written before its first step runs (with the healing process's pid and
    #    start time, so a heal whose autoops died is found) and finished with its outcome
    """
    CREATE TABLE heal_attempts (
        attempt_id TEXT PRIMARY KEY,
        env TEXT NOT NULL,
        host TEXT NOT NULL,
        finding_id TEXT NOT NULL,
        runbook TEXT NOT NULL,
        started TEXT NOT NULL,
        ended TEXT,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL,
        pid INTEGER NOT NULL,
        pid_start TEXT NOT NULL
    );
    CREATE INDEX heal_attempts_by_finding ON heal_attempts (finding_id, started);
    """,
    # 9: deploys and rollbacks as they ended (autoops.state.deploys): what the promotion
    #    gate reads to know which commit an environment verified, and when
    """
    CREATE TABLE deploys (
        run_id TEXT PRIMARY KEY,
        env TEXT NOT NULL,
        app TEXT NOT NULL,
        commit_id TEXT NOT NULL,
        operation TEXT NOT NULL,
        outcome TEXT NOT NULL,
        finished TEXT NOT NULL,
        hosts TEXT NOT NULL
    );
    CREATE INDEX deploys_by_app ON deploys (env, app, finished);
    """,
)
