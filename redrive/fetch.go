package redrive

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Fetcher reads one record back from a Kafka dead-letter topic: the index
// keeps a payload only up to its cap, and the record itself stays in Kafka,
// so a redrive of a cut payload sends the record's whole value from there.
type Fetcher func(ctx context.Context, cluster, topic string, partition int32, offset int64) (*kgo.Record, error)

// KafkaFetcher returns a Fetcher over the brokers of each cluster. Each
// fetch assigns the one partition at the offset with a short-lived client:
// cut payloads are rare, and an assigned consumer commits nothing.
func KafkaFetcher(clusters map[string][]string) Fetcher {
	return func(ctx context.Context, cluster, topic string, partition int32, offset int64) (*kgo.Record, error) {
		brokers, ok := clusters[cluster]
		if !ok {
			return nil, fmt.Errorf("no Kafka cluster %q to read the whole record from", cluster)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(offset)}}),
			kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(64<<20))
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("reading %s/%d@%d back: no record there within 30s (was the topic deleted or recreated?): %w", topic, partition, offset, err)
			}
			for _, fe := range fs.Errors() {
				return nil, fmt.Errorf("reading %s/%d@%d back: %w", topic, partition, offset, fe.Err)
			}
			var found *kgo.Record
			fs.EachRecord(func(r *kgo.Record) {
				if found == nil && r.Offset >= offset {
					found = r
				}
			})
			if found != nil {
				if found.Offset != offset {
					return nil, fmt.Errorf("record %s/%d@%d is gone from Kafka (retention or compaction); the index has only its first bytes", topic, partition, offset)
				}
				return found, nil
			}
		}
	}
}
