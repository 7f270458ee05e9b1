package dlqstore_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"switchyard/access"
	"switchyard/dlqstore"
	"switchyard/dlqstore/dlqstoretest"
	"switchyard/sqldb"
)

// Entries stored before migration 2 get their resource from the origin in
// their record, and their group stats are rebuilt with it.
func TestMigrationBackfillsResource(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dlq.db")
	db, err := sqldb.Open(ctx, path, dlqstore.Schema().UpTo(1))
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO groups (id, fingerprint, title, count, first_seen, last_seen) VALUES (1, 'fp', 'boom', 3, 1, 3)`)
	type old struct {
		broker, cluster, vhost, dest, tenant, record string
	}
	rows := []old{
		{"kafka", "main", "", "orders.dlq", "t1", `{"origin":{"broker":"kafka","cluster":"east","topic":"orders"}}`},
		{"rabbitmq", "rmq", "/", "notify.dlq", "t1", `{"origin":{"broker":"rabbitmq","vhost":"/","queue":"notify"}}`},
		{"kafka", "main", "", "raw.dlq", "t2", `{"origin":{}}`},
	}
	for i, r := range rows {
		var part, off any
		if r.broker == "kafka" {
			part, off = 0, i
		}
		exec(`INSERT INTO entries (id, broker, cluster, vhost, destination, kpartition, koffset, tenant, fingerprint, group_id,
	first_failure_at, last_failure_at, indexed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'fp', 1, ?, ?, 1, 1)`,
			i+1, r.broker, r.cluster, r.vhost, r.dest, part, off, r.tenant, i+1, i+1)
		exec(`INSERT INTO entry_bodies (id, payload, record) VALUES (?, x'', ?)`, i+1, r.record)
		exec(`INSERT INTO group_stats VALUES (1, ?, ?, ?, '', 'dead', 1, ?, ?)`, r.tenant, r.broker, r.dest, i+1, i+1)
	}
	db.Close()

	s, err := dlqstore.Open(ctx, path, dlqstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []string{"kafka:east/orders", "rabbitmq:/notify", "kafka:main/raw.dlq"}
	for i, w := range want {
		e, err := s.Entry(ctx, int64(i+1))
		if err != nil || e.Resource != w {
			t.Errorf("entry %d resource = %q, %v; want %q", i+1, e.Resource, err, w)
		}
	}
	sc := &dlqstore.TenantScope{All: true, Rules: []access.Rule{{Resources: []string{"rabbitmq:/*", "kafka:east/*"}}}}
	c, err := s.Counts(ctx, sc)
	if err != nil || c.ByStatus[dlqstore.StatusDead] != 2 || c.ByDestination["raw.dlq"] != 0 {
		t.Errorf("counts after migration = %+v, %v", c, err)
	}
	var n int
	if err := s.DB().QueryRow("SELECT count(*) FROM group_stats WHERE cluster != ''").Scan(&n); err != nil || n != 3 {
		t.Errorf("rebuilt group_stats rows with a cluster = %d, %v", n, err)
	}
}

// Migration 5 gives the jobs of an existing database their scope from
// their ledgers: the t1 operator sees the t1 job, not the mixed one nor
// the redrive elsewhere, and a job whose entry retention purged is left
// to admins.
func TestJobScopeMigrationBackfills(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dlq.db")
	old, err := sqldb.Open(ctx, path, dlqstore.Schema().UpTo(4))
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := old.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i, tenant := range []string{"t1", "t1", "t2"} {
		exec(`INSERT INTO entries (id, broker, cluster, destination, kpartition, koffset, tenant, fingerprint, group_id, first_failure_at, last_failure_at, indexed_at, updated_at, resource)
VALUES (?, 'kafka', 'main', 'orders.dlq', 0, ?, ?, 'fp', 1, 1, 1, 1, 1, 'kafka:main/orders')`, i+1, i, tenant)
	}
	job := func(id int64, action, request string, entries ...int64) {
		exec(`INSERT INTO jobs (id, action, state, actor, reason, request, created_at, updated_at) VALUES (?, ?, 'completed', 'ada', 'r', CAST(? AS BLOB), 1, 1)`, id, action, request)
		for i, e := range entries {
			exec(`INSERT INTO job_items (job_id, seq, entry_id, destination, prev_status, state) VALUES (?, ?, ?, 'kafka:main/orders', 'dead', 'sent')`, id, i+1, e)
		}
	}
	job(1, "restore", `{"action":"restore"}`, 1, 2)
	job(2, "redrive", `{"action":"redrive"}`, 1, 3)
	job(3, "redrive", `{"action":"redrive","destination":"kafka:main/payments"}`, 1)
	job(4, "discard", `{"action":"discard"}`, 1, 99) // entry 99 was purged
	old.Close()

	s, err := dlqstore.Open(ctx, path, dlqstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rule := []access.Rule{{Resources: []string{"kafka:main/orders"}, Tenants: []string{"t1"}}}
	t1 := dlqstore.JobViewer{Rules: map[access.Action][]access.Rule{access.ActionRedrive: rule, access.ActionDiscard: rule}}
	if got := dlqstoretest.VisibleJobs(t, s, t1, 10); !slices.Equal(got, []int64{1}) {
		t.Errorf("t1 operator sees %v after the migration, want [1] (the restore, checked for discard)", got)
	}
	t1.Rules[access.ActionRedriveElsewhere] = []access.Rule{{Resources: []string{"kafka:main/payments"}}}
	if got := dlqstoretest.VisibleJobs(t, s, t1, 10); !slices.Equal(got, []int64{3, 1}) {
		t.Errorf("t1 operator with redrive_elsewhere sees %v, want [3 1]", got)
	}
	everything := []access.Rule{{Resources: []string{"*"}}}
	admin := dlqstore.JobViewer{Rules: map[access.Action][]access.Rule{access.ActionRedrive: everything, access.ActionDiscard: everything, access.ActionRedriveElsewhere: everything}}
	if got := dlqstoretest.VisibleJobs(t, s, admin, 10); !slices.Equal(got, []int64{4, 3, 2, 1}) {
		t.Errorf("admin sees %v, want every job", got)
	}
	rec, err := s.Job(ctx, 1)
	if err != nil || rec.Access != access.ActionDiscard {
		t.Errorf("restore job's access = %q, %v; want discard", rec.Access, err)
	}
	var scoped int
	if err := s.DB().QueryRow("SELECT scoped FROM jobs WHERE id = 4").Scan(&scoped); err != nil || scoped != 0 {
		t.Errorf("job with a purged entry: scoped = %d, %v; want 0", scoped, err)
	}
	var n int
	if err := s.DB().QueryRow("SELECT count(*) FROM job_scopes").Scan(&n); err != nil || n != 6 {
		// 1: (discard, orders, t1); 2: t1 and t2; 3: t1 and the destination; 4: t1.
		t.Errorf("job_scopes rows = %d, %v; want 6", n, err)
	}
}

// Migration 6 gives the jobs cancelled before it the name their error
// held, and nobody to any other job.
func TestCancelledByMigrationBackfills(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dlq.db")
	old, err := sqldb.Open(ctx, path, dlqstore.Schema().UpTo(5))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO jobs (id, action, state, actor, reason, request, error, created_at, updated_at, finished_at) VALUES (1, 'redrive', 'cancelled', 'ada', 'r', CAST('{}' AS BLOB), 'cancelled by tina', 1, 1, 1)`,
		`INSERT INTO jobs (id, action, state, actor, reason, request, error, created_at, updated_at, finished_at) VALUES (2, 'redrive', 'failed', 'ada', 'r', CAST('{}' AS BLOB), 'cancelled by a broker outage', 1, 1, 1)`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	old.Close()
	s := openAt(t, path, dlqstore.Options{})
	for id, want := range map[int64]string{1: "tina", 2: ""} {
		if j, err := s.Job(ctx, id); err != nil || j.CancelledBy != want {
			t.Errorf("job %d cancelled by %q, %v; want %q", id, j.CancelledBy, err, want)
		}
	}
}
