package main

import (
	"fmt"
	"log/slog"
	"sync"

	"switchyard/delivery"
	"switchyard/delivery/kafka"
	"switchyard/delivery/rabbitmq"
	"switchyard/redrive"
)

// senders are the redrive engine's publishers, one per Kafka cluster and
// one for RabbitMQ, made on first use (a cluster nobody redrives to costs
// no connection) and closed with the console.
type senders struct {
	clusters  map[string][]string
	rabbitURL string
	log       *slog.Logger
	// tel gives the publishers the console's tracer, so that every
	// redriven message gets its producer span (redrive.startSpan).
	tel *delivery.Telemetry

	mu     sync.Mutex
	kafka  map[string]*kafka.Publisher
	rabbit *rabbitmq.Publisher
}

func newSenders(clusters []KafkaCluster, rabbitURL string, log *slog.Logger, tel *delivery.Telemetry) *senders {
	s := &senders{clusters: map[string][]string{}, rabbitURL: rabbitURL, log: log, tel: tel, kafka: map[string]*kafka.Publisher{}}
	for _, c := range clusters {
		s.clusters[c.Name] = c.Brokers
	}
	return s
}

// sender returns the sender of a broker cluster (redrive.Options.Sender).
func (s *senders) sender(broker, cluster string) (redrive.Sender, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch broker {
	case delivery.BrokerKafka:
		if p := s.kafka[cluster]; p != nil {
			return redrive.NewKafkaSender(p), nil
		}
		brokers, ok := s.clusters[cluster]
		if !ok {
			return nil, fmt.Errorf("no Kafka cluster %q is configured", cluster)
		}
		p, err := kafka.NewPublisher(kafka.PublisherOptions{Brokers: brokers, ClientID: "switchyard-redrive", Cluster: cluster, Logger: s.log, Telemetry: s.tel})
		if err != nil {
			return nil, err
		}
		s.kafka[cluster] = p
		return redrive.NewKafkaSender(p), nil
	case delivery.BrokerRabbitMQ:
		if s.rabbitURL == "" {
			return nil, fmt.Errorf("no RabbitMQ connection is configured")
		}
		if s.rabbit == nil {
			p, err := rabbitmq.NewPublisher(rabbitmq.PublisherOptions{URL: s.rabbitURL, Name: "switchyard-redrive", Logger: s.log, Telemetry: s.tel})
			if err != nil {
				return nil, fmt.Errorf("rabbitmq: %w", err)
			}
			s.rabbit = p
		}
		return redrive.NewRabbitSender(s.rabbit), nil
	}
	return nil, fmt.Errorf("unknown broker %q", broker)
}

func (s *senders) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.kafka {
		p.Close()
	}
	if s.rabbit != nil {
		s.rabbit.Close()
	}
}
