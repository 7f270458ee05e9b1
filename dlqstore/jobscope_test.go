package dlqstore

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/sqldb"
)

// viewerOf builds a JobViewer from rules per action, as the engine does
// from a principal's bindings.
func viewerOf(rules map[access.Action][]access.Rule) JobViewer { return JobViewer{Rules: rules} }

func jobIDs(js []JobRecord) []int64 {
	out := []int64{}
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

// visibleJobs walks every page of the jobs v may see, limit per page, and
// fails on a short page that has a next cursor.
func visibleJobs(t *testing.T, s *Store, v JobViewer, limit int) []int64 {
	t.Helper()
	var out []int64
	var before int64
	for {
		js, next, err := s.Jobs(context.Background(), JobQuery{Viewer: &v, Before: before, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		if next != 0 && len(js) != limit {
			t.Errorf("page before %d has %d jobs and a next cursor %d, want %d", before, len(js), next, limit)
		}
		out = append(out, jobIDs(js)...)
		if next == 0 {
			return out
		}
		before = next
	}
}

// A job is visible to whoever's rules for its action allow every
// (resource, tenant) of its entries — and redrive_elsewhere on a
// destination — or to an admin; the list, one job and an entry's history
// all apply it, in the query.
func TestJobVisibility(t *testing.T) {
	s, _ := mustOpen(t)
	ctx := context.Background()
	indexKafka(t, s, "orders.dlq", 0,
		spec{off: 0, msg: "a", tenant: "t1"}, spec{off: 1, msg: "b", tenant: "t1"}, spec{off: 2, msg: "c", tenant: "t2"},
		spec{off: 3, msg: "d", tenant: "t1", origin: "payments"}, spec{off: 4, msg: "e"})
	const t1a, t1b, t2, pay, untenanted = 1, 2, 3, 4, 5
	create := func(acc access.Action, dest string, ids ...int64) int64 {
		t.Helper()
		j, err := s.CreateJob(ctx, JobRecord{Action: string(acc), Access: acc, State: "running", Actor: "ada", Request: []byte("{}")},
			Selection{IDs: ids, Eligible: []Status{StatusDead}, Destination: dest}, "")
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	redrive := access.ActionRedrive
	jT1 := create(redrive, "", t1a, t1b)
	jT2 := create(redrive, "", t2)
	jMixed := create(redrive, "", t1a, t2)
	jPay := create(redrive, "", pay)
	jNoTenant := create(redrive, "", untenanted)
	jElse := create(redrive, "kafka:main/payments", t1a)
	jDiscard := create(access.ActionDiscard, "", t1b)
	all := []int64{jT1, jT2, jMixed, jPay, jNoTenant, jElse, jDiscard}

	orders := []string{"kafka:main/orders"}
	everything := []access.Rule{{Resources: []string{"*"}}}
	tests := []struct {
		name  string
		rules map[access.Action][]access.Rule
		want  []int64 // ascending
	}{
		{"admin", map[access.Action][]access.Rule{redrive: everything, access.ActionDiscard: everything, access.ActionRedriveElsewhere: everything}, all},
		{"t1 operator of orders", map[access.Action][]access.Rule{redrive: {{Resources: orders, Tenants: []string{"t1"}}}},
			[]int64{jT1, jNoTenant}},
		{"t1 and t2 operator of ord*", map[access.Action][]access.Rule{redrive: {{Resources: []string{"kafka:main/ord*"}, Tenants: []string{"t1", "t2"}}}},
			[]int64{jT1, jT2, jMixed, jNoTenant}},
		{"t1 and t2 through two bindings", map[access.Action][]access.Rule{redrive: {{Resources: orders, Tenants: []string{"t1"}}, {Resources: orders, Tenants: []string{"t2"}}}},
			[]int64{jT1, jT2, jMixed, jNoTenant}},
		{"t1 operator with redrive_elsewhere to payments", map[access.Action][]access.Rule{
			redrive: {{Resources: orders, Tenants: []string{"t1"}}}, access.ActionRedriveElsewhere: {{Resources: []string{"kafka:main/payments"}}}},
			[]int64{jT1, jNoTenant, jElse}},
		{"t1 on every resource", map[access.Action][]access.Rule{redrive: {{Resources: []string{"*"}, Tenants: []string{"t1"}}}},
			[]int64{jT1, jPay, jNoTenant}},
		{"redrive admin without discard", map[access.Action][]access.Rule{redrive: everything},
			[]int64{jT1, jT2, jMixed, jPay, jNoTenant}},
		{"discard on t1 orders", map[access.Action][]access.Rule{access.ActionDiscard: {{Resources: orders, Tenants: []string{"t1"}}}},
			[]int64{jDiscard}},
		{"a pattern with a GLOB class character matches itself only", map[access.Action][]access.Rule{redrive: {{Resources: []string{"kafka:main/[o]rders"}}}},
			nil},
		{"no rules", map[access.Action][]access.Rule{redrive: {}, access.ActionDiscard: nil}, nil},
		{"nobody", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := viewerOf(tt.rules)
			want := slices.Clone(tt.want)
			slices.Reverse(want) // newest first
			if want == nil {
				want = []int64{}
			}
			got := visibleJobs(t, s, v, 2)
			if got == nil {
				got = []int64{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("jobs = %v, want %v", got, want)
			}
			for _, id := range all {
				_, err := s.ViewJob(ctx, id, v)
				switch visible := slices.Contains(tt.want, id); {
				case visible && err != nil:
					t.Errorf("job %d: %v, want it", id, err)
				case !visible && delivery.ErrorCode(err) != delivery.ENOTFOUND:
					t.Errorf("job %d: %v, want ENOTFOUND", id, err)
				}
			}
			hist, err := s.EntryHistory(ctx, t1a, &v)
			if err != nil {
				t.Fatal(err)
			}
			var gotH, wantH []int64
			for _, h := range hist {
				gotH = append(gotH, h.Job.ID)
			}
			for _, id := range tt.want {
				if slices.Contains([]int64{jT1, jMixed, jElse}, id) { // the jobs holding entry t1a
					wantH = append(wantH, id)
				}
			}
			if !slices.Equal(gotH, wantH) {
				t.Errorf("history of entry %d = %v, want %v", t1a, gotH, wantH)
			}
		})
	}
	// Running and finished filter in the query too.
	if err := s.SetJobState(ctx, jT1, "completed", "", true); err != nil {
		t.Fatal(err)
	}
	v := viewerOf(map[access.Action][]access.Rule{redrive: {{Resources: orders, Tenants: []string{"t1"}}}})
	if js, _, _ := s.Jobs(ctx, JobQuery{Viewer: &v, Finished: true}); !slices.Equal(jobIDs(js), []int64{jT1}) {
		t.Errorf("finished jobs = %v, want [%d]", jobIDs(js), jT1)
	}
	if js, _, _ := s.Jobs(ctx, JobQuery{Viewer: &v, Running: true}); !slices.Equal(jobIDs(js), []int64{jNoTenant}) {
		t.Errorf("running jobs = %v, want [%d]", jobIDs(js), jNoTenant)
	}
	if _, _, err := s.Jobs(ctx, JobQuery{Running: true, Finished: true}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("running and finished: %v, want EINVALID", err)
	}
	// The runner (no viewer) sees every job.
	if js, _, _ := s.Jobs(ctx, JobQuery{Limit: 500}); len(js) != len(all) {
		t.Errorf("jobs without a viewer = %v", jobIDs(js))
	}
}

// A big set is frozen a chunk per transaction: its scope covers every
// chunk (a t2 entry in the last one hides it from a t1 operator), and
// while it is still being frozen only an admin sees it.
func TestJobScopeOfAChunkedFreeze(t *testing.T) {
	defer func(o, c int) { freezeOneTx, freezeChunk = o, c }(freezeOneTx, freezeChunk)
	freezeOneTx, freezeChunk = 3, 2
	s, _ := mustOpen(t)
	ctx := context.Background()
	var specs []spec
	for i := range 7 {
		specs = append(specs, spec{off: int64(i), msg: "boom", tenant: "t1"})
	}
	specs[6].tenant = "t2"
	indexKafka(t, s, "f.dlq", 0, specs...)
	t1 := viewerOf(map[access.Action][]access.Rule{access.ActionRedrive: {{Resources: []string{"kafka:main/orders"}, Tenants: []string{"t1"}}}})
	admin := viewerOf(map[access.Action][]access.Rule{access.ActionRedrive: {{Resources: []string{"*"}}}})
	freeze := func(ids ...int64) int64 {
		t.Helper()
		j, err := s.CreateJob(ctx, JobRecord{Action: "redrive", Access: access.ActionRedrive, State: "running", Actor: "ada", Request: []byte("{}")},
			Selection{IDs: ids, Eligible: []Status{StatusDead}}, StatusRedriving)
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	mixed := freeze(1, 2, 3, 4, 5, 6, 7) // four transactions; t2 in the last
	if _, err := s.ViewJob(ctx, mixed, t1); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("t1 operator sees a job whose last chunk holds a t2 entry: %v", err)
	}
	if _, err := s.ViewJob(ctx, mixed, admin); err != nil {
		t.Errorf("admin: %v", err)
	}
	if err := s.CancelPending(ctx, mixed, "test"); err != nil {
		t.Fatal(err)
	}
	ours := freeze(1, 2, 3, 4, 5) // t1 only, three transactions
	if _, err := s.ViewJob(ctx, ours, t1); err != nil {
		t.Fatalf("t1 operator does not see a t1 job: %v", err)
	}
	// What the first chunk's transaction commits: the job freezing, its
	// scope not yet complete.
	if _, err := s.db.Exec("UPDATE jobs SET state = ?, scoped = 0 WHERE id = ?", JobFreezing, ours); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ViewJob(ctx, ours, t1); delivery.ErrorCode(err) != delivery.ENOTFOUND {
		t.Errorf("t1 operator sees a job still freezing: %v", err)
	}
	if got := visibleJobs(t, s, t1, 10); len(got) != 0 {
		t.Errorf("t1 operator lists %v while it freezes", got)
	}
	if _, err := s.ViewJob(ctx, ours, admin); err != nil {
		t.Errorf("admin does not see a freezing job: %v", err)
	}
	// Ended after a restart, it is judged by the scope of what it froze.
	if _, err := s.AbandonFreezing(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ViewJob(ctx, ours, t1); err != nil {
		t.Errorf("t1 operator does not see the abandoned t1 job: %v", err)
	}
}

// Migration 5 gives the jobs of an existing database their scope from
// their ledgers: the t1 operator sees the t1 job, not the mixed one nor
// the redrive elsewhere, and a job whose entry retention purged is left
// to admins.
func TestJobScopeMigrationBackfills(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dlq.db")
	old, err := sqldb.OpenWith(ctx, path, Migrations()[:4])
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

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rule := []access.Rule{{Resources: []string{"kafka:main/orders"}, Tenants: []string{"t1"}}}
	t1 := viewerOf(map[access.Action][]access.Rule{access.ActionRedrive: rule, access.ActionDiscard: rule})
	if got := visibleJobs(t, s, t1, 10); !slices.Equal(got, []int64{1}) {
		t.Errorf("t1 operator sees %v after the migration, want [1] (the restore, checked for discard)", got)
	}
	t1.Rules[access.ActionRedriveElsewhere] = []access.Rule{{Resources: []string{"kafka:main/payments"}}}
	if got := visibleJobs(t, s, t1, 10); !slices.Equal(got, []int64{3, 1}) {
		t.Errorf("t1 operator with redrive_elsewhere sees %v, want [3 1]", got)
	}
	everything := []access.Rule{{Resources: []string{"*"}}}
	admin := viewerOf(map[access.Action][]access.Rule{access.ActionRedrive: everything, access.ActionDiscard: everything, access.ActionRedriveElsewhere: everything})
	if got := visibleJobs(t, s, admin, 10); !slices.Equal(got, []int64{4, 3, 2, 1}) {
		t.Errorf("admin sees %v, want every job", got)
	}
	rec, err := s.Job(ctx, 1)
	if err != nil || rec.Access != access.ActionDiscard {
		t.Errorf("restore job's access = %q, %v; want discard", rec.Access, err)
	}
	var scoped int
	if err := s.db.QueryRow("SELECT scoped FROM jobs WHERE id = 4").Scan(&scoped); err != nil || scoped != 0 {
		t.Errorf("job with a purged entry: scoped = %d, %v; want 0", scoped, err)
	}
	var n int
	if err := s.db.QueryRow("SELECT count(*) FROM job_scopes").Scan(&n); err != nil || n != 6 {
		// 1: (discard, orders, t1); 2: t1 and t2; 3: t1 and the destination; 4: t1.
		t.Errorf("job_scopes rows = %d, %v; want 6", n, err)
	}
}
