package collector

// analysis turns a cluster's consecutive snapshots into what an operator
// asks first: per-partition throughput, lag in seconds (from each
// partition's high-watermark history) and Burrow's status per partition
// and group. It belongs to one cluster and runs under the Poller's lock.
type analysis struct {
	lagPoints int
	tables    map[topicPartition]*LagTable
	eval      *Evaluator
}

func newAnalysis(eval *Evaluator, lagPoints int) *analysis {
	return &analysis{lagPoints: lagPoints, tables: map[topicPartition]*LagTable{}, eval: eval}
}

// apply fills the Poller-owned fields of cur (a fresh snapshot, not yet
// shared) using prev, the previous good snapshot of the same cluster.
func (a *analysis) apply(prev, cur *ClusterSnapshot) {
	now := cur.TakenAt
	prevHigh := map[topicPartition]int64{}
	if prev != nil {
		for _, t := range prev.Topics {
			for _, p := range t.Partitions {
				if p.Error == "" {
					prevHigh[topicPartition{topic: t.Name, partition: p.Partition}] = p.High
				}
			}
		}
	}
	dt := 0.0
	if prev != nil {
		dt = now.Sub(prev.TakenAt).Seconds()
	}
	seen := make(map[topicPartition]bool, len(a.tables))
	for ti := range cur.Topics {
		t := &cur.Topics[ti]
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			if p.Error != "" || p.High < 0 {
				continue
			}
			key := topicPartition{topic: t.Name, partition: p.Partition}
			seen[key] = true
			if before, ok := prevHigh[key]; ok && dt > 0 && p.High >= before {
				p.Rate = float64(p.High-before) / dt
			}
			lt := a.tables[key]
			if lt == nil {
				lt = &LagTable{MaxPoints: a.lagPoints}
				a.tables[key] = lt
			}
			if n := lt.Len(); n > 0 && prevHigh[key] > p.High {
				lt.Reset() // the partition went back: a recreated topic
			}
			lt.Add(p.High, now)
		}
	}
	for key := range a.tables {
		if !seen[key] {
			delete(a.tables, key) // deleted topics must not keep memory
		}
	}
	if a.eval != nil {
		a.eval.ObserveSnapshot(*cur)
	}
	for gi := range cur.Groups {
		g := &cur.Groups[gi]
		g.MaxLagPartition = -1
		keys := make([]PartitionKey, 0, len(g.Partitions))
		for pi := range g.Partitions {
			gp := &g.Partitions[pi]
			keys = append(keys, PartitionKey{Cluster: cur.Cluster, Group: g.Name, Topic: gp.Topic, Partition: gp.Partition})
			if gp.Committed < 0 {
				continue
			}
			if lt := a.tables[topicPartition{topic: gp.Topic, partition: gp.Partition}]; lt != nil {
				gp.LagSeconds, gp.LagSecondsKnown = lt.LagSeconds(gp.Committed, now)
				if gp.LagSecondsKnown && (g.MaxLagPartition < 0 || gp.LagSeconds > g.MaxLagSeconds) {
					g.MaxLagSeconds, g.MaxLagTopic, g.MaxLagPartition = gp.LagSeconds, gp.Topic, gp.Partition
				}
			}
		}
		if a.eval == nil || len(keys) == 0 {
			continue
		}
		gs := a.eval.EvaluateGroup(cur.Cluster, g.Name, keys, now)
		g.Status, g.Reason, g.Complete = gs.Status, gs.Reason, gs.Complete
		byKey := make(map[topicPartition]PartitionStatus, len(gs.Partitions))
		for _, ps := range gs.Partitions {
			byKey[topicPartition{topic: ps.Key.Topic, partition: ps.Key.Partition}] = ps
		}
		for pi := range g.Partitions {
			gp := &g.Partitions[pi]
			if ps, ok := byKey[topicPartition{topic: gp.Topic, partition: gp.Partition}]; ok {
				gp.Status, gp.Reason = ps.Status, ps.Reason
			}
		}
	}
}
