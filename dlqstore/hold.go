package dlqstore

// A job that sends its entries (a redrive) holds them for as long as they
// are pending in its ledger: pages, filters and counts show them in the
// job's hold status (redriving), and no other job, triage or status change
// takes them. The ledger is the hold — jobs.hold names the status, and an
// entry is held while an item of it is pending in such a job — so freezing
// a job writes its ledger and the counts, not every entry; the entries keep
// the status they had, which a cancel gives back by leaving them alone.
// These are the one home of that rule's SQL.

// heldStatus is the SQL of the status entry alias shows while a job holds
// it, NULL when none does. (A job ends only once no item of it is pending:
// finished_at lets the lookups go through the few unfinished jobs.)
func heldStatus(alias string) string {
	return `(SELECT hj.hold FROM job_items hi JOIN jobs hj ON hj.id = hi.job_id
	WHERE hi.entry_id = ` + alias + `.id AND hi.state = ` + lit(ItemPending) + ` AND hj.hold != '' AND hj.finished_at = 0 LIMIT 1)`
}

// anyHeld is the SQL of 1 while some job holds entries, else NULL: an
// uncorrelated subquery, computed once per statement, that spares every
// row its ledger lookup (some 0.4 µs) while no redrive runs, which is most
// of the time.
const anyHeld = `(SELECT 1 FROM jobs WHERE finished_at = 0 AND hold != '' LIMIT 1)`

// shownStatus is the SQL of the status entry alias shows: its hold's, or
// its own.
func shownStatus(alias string) string {
	return "CASE WHEN " + anyHeld + " IS NULL THEN " + alias + ".status ELSE coalesce(" + heldStatus(alias) + ", " + alias + ".status) END"
}

// notInAJob is the SQL condition that no job has entry alias pending: what
// a job that will hold its entries may take (Selection.eligible), so that
// an entry it holds is in no other job and its counts move once. A job
// that holds nothing only keeps off held entries.
func notInAJob(alias string) string {
	return "NOT EXISTS (SELECT 1 FROM job_items pi WHERE pi.entry_id = " + alias + ".id AND pi.state = " + lit(ItemPending) + ")"
}

// holdable reports whether a job can hold its entries in st (the only hold
// status is redriving).
func holdable(st string) bool { return st == string(StatusRedriving) }

// statusCond is the SQL condition that entry alias shows one of statuses
// (non-empty), with its arguments. An entry held by a job shows the
// hold's status; its own column says what it had before. A list without a
// hold status stays a condition on the status column (the indexes that
// lead with it keep serving it) plus a probe of the ledger; a hold status
// adds the held entries, found through the pending ledger of the holding
// jobs.
func statusCond(alias string, statuses []string) (string, []any) {
	var args []any
	var holds []string
	for _, st := range statuses {
		args = append(args, st)
		if holdable(st) {
			holds = append(holds, st)
		}
	}
	own := alias + ".status IN (" + placeholders(len(statuses)) + ") AND (" + anyHeld + " IS NULL OR " + heldStatus(alias) + " IS NULL)"
	if len(holds) == 0 {
		return own, args
	}
	for _, st := range holds {
		args = append(args, st)
	}
	held := alias + `.id IN (SELECT hi.entry_id FROM jobs hj JOIN job_items hi ON hi.job_id = hj.id AND hi.state = ` + lit(ItemPending) + `
	WHERE hj.finished_at = 0 AND hj.hold IN (` + placeholders(len(holds)) + `))`
	return "((" + own + ") OR " + held + ")", args
}

// sqlColumns counts the columns of a select list whose expressions may hold
// commas inside parentheses.
func sqlColumns(list string) int {
	n, depth := 1, 0
	for _, c := range list {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				n++
			}
		}
	}
	return n
}
