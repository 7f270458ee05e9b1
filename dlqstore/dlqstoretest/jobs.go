package dlqstoretest

import (
	"context"
	"slices"
	"testing"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
)

// A job over a filter without conditions, by someone who sees everything,
// selects every eligible entry.
func testSelectionWithoutConditions(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	IndexKafka(t, s, "a.dlq", 0, Spec{Off: 0, Msg: "x"}, Spec{Off: 1, Msg: "y"})
	p, err := s.PlanSelection(context.Background(), dlqstore.Selection{Filter: &dlqstore.Filter{}, Eligible: []dlqstore.Status{dlqstore.StatusDead}}, 1)
	if err != nil || p.Count != 2 || len(p.Sample) != 1 {
		t.Fatalf("plan of an empty filter = %+v, %v", p, err)
	}
	// Full text in a job's filter.
	p, err = s.PlanSelection(context.Background(), dlqstore.Selection{Filter: &dlqstore.Filter{Q: "y"}, Eligible: []dlqstore.Status{dlqstore.StatusDead}}, 5)
	if err != nil || p.Count != 1 || len(p.Sample) != 1 || p.Sample[0].DL.Error.Message != "y" {
		t.Fatalf("plan of q=y = %+v, %v", p, err)
	}
	j, err := s.CreateJob(context.Background(), dlqstore.JobRecord{Action: "discard", Access: access.ActionDiscard, State: dlqstore.JobRunning, Request: []byte("{}")},
		dlqstore.Selection{Filter: &dlqstore.Filter{Q: "x OR y"}, Eligible: []dlqstore.Status{dlqstore.StatusDead}}, "")
	if err != nil || j.Total != 2 {
		t.Fatalf("job of q='x OR y' = %+v, %v", j, err)
	}
}

// A job is visible to whoever's rules for its action allow every
// (resource, tenant) of its entries — and redrive_elsewhere on a
// destination — or to an admin; the list, one job and an entry's history
// all apply it, in the query.
func testJobVisibility(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	ctx := context.Background()
	IndexKafka(t, s, "orders.dlq", 0,
		Spec{Off: 0, Msg: "a", Tenant: "t1"}, Spec{Off: 1, Msg: "b", Tenant: "t1"}, Spec{Off: 2, Msg: "c", Tenant: "t2"},
		Spec{Off: 3, Msg: "d", Tenant: "t1", Origin: "payments"}, Spec{Off: 4, Msg: "e"})
	const t1a, t1b, t2, pay, untenanted = 1, 2, 3, 4, 5
	create := func(acc access.Action, dest string, ids ...int64) int64 {
		t.Helper()
		j, err := s.CreateJob(ctx, dlqstore.JobRecord{Action: string(acc), Access: acc, State: dlqstore.JobRunning, Actor: "ada", Request: []byte("{}")},
			dlqstore.Selection{IDs: ids, Eligible: []dlqstore.Status{dlqstore.StatusDead}, Target: dest}, "")
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
			v := dlqstore.JobViewer{Rules: tt.rules}
			want := slices.Clone(tt.want)
			slices.Reverse(want) // newest first
			if want == nil {
				want = []int64{}
			}
			got := VisibleJobs(t, s, v, 2)
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
	if err := s.SetJobState(ctx, jT1, dlqstore.JobCompleted, "", true); err != nil {
		t.Fatal(err)
	}
	v := dlqstore.JobViewer{Rules: map[access.Action][]access.Rule{redrive: {{Resources: orders, Tenants: []string{"t1"}}}}}
	if js, _, _ := s.Jobs(ctx, dlqstore.JobQuery{Viewer: &v, Finished: true}); !slices.Equal(JobIDs(js), []int64{jT1}) {
		t.Errorf("finished jobs = %v, want [%d]", JobIDs(js), jT1)
	}
	if js, _, _ := s.Jobs(ctx, dlqstore.JobQuery{Viewer: &v, Running: true}); !slices.Equal(JobIDs(js), []int64{jNoTenant}) {
		t.Errorf("running jobs = %v, want [%d]", JobIDs(js), jNoTenant)
	}
	if _, _, err := s.Jobs(ctx, dlqstore.JobQuery{Running: true, Finished: true}); delivery.ErrorCode(err) != delivery.EINVALID {
		t.Errorf("running and finished: %v, want EINVALID", err)
	}
	// The runner (no viewer) sees every job.
	if js, _, _ := s.Jobs(ctx, dlqstore.JobQuery{Limit: 500}); len(js) != len(all) {
		t.Errorf("jobs without a viewer = %v", JobIDs(js))
	}
}

// Who cancelled a job is a field of it, kept when the runner ends the job;
// a job that has ended cannot be cancelled any more.
func testCancelJobRecordsWho(t *testing.T, open Opener) {
	s, _ := setup(t, open)
	ctx := context.Background()
	IndexKafka(t, s, "c.dlq", 0, Spec{Off: 0, Msg: "a"}, Spec{Off: 1, Msg: "b"})
	create := func(id int64) int64 {
		t.Helper()
		j, err := s.CreateJob(ctx, dlqstore.JobRecord{Action: "discard", Access: access.ActionDiscard, State: dlqstore.JobRunning, Actor: "ada", Request: []byte("{}")},
			dlqstore.Selection{IDs: []int64{id}, Eligible: []dlqstore.Status{dlqstore.StatusDead}}, "")
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	running, ended := create(1), create(2)
	if err := s.SetJobState(ctx, ended, dlqstore.JobCompleted, "", true); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int64]bool{running: true, ended: false} {
		if marked, err := s.CancelJob(ctx, id, "tina", "cancelled by tina"); err != nil || marked != want {
			t.Fatalf("cancel job %d = %v, %v; want %v (the job had ended: %v)", id, marked, err, want, id == ended)
		}
	}
	j, err := s.Job(ctx, running)
	if err != nil || j.State != dlqstore.JobCancelling || j.CancelledBy != "tina" || j.Error != "cancelled by tina" {
		t.Fatalf("cancelled job = %+v, %v", j, err)
	}
	// The runner's own updates do not undo the cancel; its end keeps who.
	if err := s.SetJobState(ctx, running, dlqstore.JobRunning, "", false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetJobState(ctx, running, dlqstore.JobCancelled, j.Error, true); err != nil {
		t.Fatal(err)
	}
	if j, _ = s.Job(ctx, running); j.State != dlqstore.JobCancelled || j.CancelledBy != "tina" || j.FinishedAt.IsZero() {
		t.Errorf("ended job = %+v", j)
	}
	if j, _ = s.Job(ctx, ended); j.State != dlqstore.JobCompleted || j.CancelledBy != "" {
		t.Errorf("a job that had ended = %+v, want it completed and cancelled by nobody", j)
	}
}
