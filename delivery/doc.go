// Package delivery is the platform's shared delivery core: the types and rules
// that every producer, consumer and the Switchyard console agree on.
//
// The types that matter are Envelope (the platform message schema) and
// DeadLetter (one normalized failure record, read from any of the common
// dead-letter header formats by Decode and written by EncodeHeaders). Around
// them sit the error contract (ErrorBody), naming rules (LintTopic,
// LintQueue, DLQTopic), which topics and queues hold dead letters
// (DLQMatcher, over the one glob syntax MatchGlob that the console's
// resource patterns share), RetryPolicy, Fingerprint, poison-pill
// classification and the IdempotencyKeyStore contract. The broker adapters
// live in delivery/kafka and delivery/rabbitmq; this package imports
// neither.
package delivery
