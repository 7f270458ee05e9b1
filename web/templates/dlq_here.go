package templates

// DLQHere is what the page of a DLQ topic or queue says of the dead
// letters the console indexed from it: how many of them the viewer may
// see (counted in the store over their scope), a link to those entries,
// and, for a RabbitMQ DLQ the console takes custody of, why the queue
// itself shows none ready.
type DLQHere struct {
	Count       string // "5", "10,000+"
	EntriesHref string
	// Custody: the console's indexer consumes this queue, so its
	// messages are held in the index, not in the queue.
	Custody bool
	AlertOn []AlertOn
}

// QueueLink is a queue named on another queue's page.
type QueueLink struct{ Name, Href string }
