package rabbitmq

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/internal/testenv"
)

// killConnection closes, through the management API, the broker side of
// the connection whose client-given name is name, as a broker restart or
// a network cut would.
func killConnection(t *testing.T, mgmt, name string) {
	t.Helper()
	cl := http.Client{Timeout: 5 * time.Second}
	var target string
	testenv.WaitFor(t, "connection "+name+" in the management API", func() bool {
		resp, err := cl.Get(mgmt + "/api/connections?columns=name,client_properties.connection_name")
		if err != nil {
			t.Fatalf("list connections: %v", err)
		}
		defer resp.Body.Close()
		var conns []struct {
			Name  string `json:"name"`
			Props struct {
				Name string `json:"connection_name"`
			} `json:"client_properties"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&conns); err != nil {
			t.Fatalf("decode connections: %v", err)
		}
		for _, c := range conns {
			if c.Props.Name == name {
				target = c.Name
				return true
			}
		}
		return false
	})
	req, _ := http.NewRequest(http.MethodDelete, mgmt+"/api/connections/"+url.PathEscape(target), nil)
	req.Header.Set("X-Reason", "test kills the connection")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("close connection: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("close connection %s: HTTP %d", target, resp.StatusCode)
	}
}

func TestConsumerReconnectsAfterConnectionLoss(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	mgmt := testenv.RabbitManagementURL(t)
	q := b.queue(QueueOptions{})
	p := newTestPublisher(t, b.url, nil)
	var handled atomic.Int32
	startConsumer(t, ConsumerOptions{URL: b.url, Queue: q, Handler: func(ctx context.Context, d *Delivery) error {
		handled.Add(1)
		return nil
	}})
	if err := p.Publish(context.Background(), "", q, newEnvelope(t), nil); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the first message", func() bool { return handled.Load() == 1 })

	killConnection(t, mgmt, "switchyard-consumer "+q)
	if err := p.Publish(context.Background(), "", q, newEnvelope(t), nil); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the message published after the outage", func() bool { return handled.Load() == 2 })
}

func TestPublisherReconnectsAfterConnectionLoss(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	mgmt := testenv.RabbitManagementURL(t)
	q := b.queue(QueueOptions{})
	name := "swtest-publisher-" + randomSuffix()
	p, err := NewPublisher(PublisherOptions{URL: b.url, Name: name, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Publish(context.Background(), "", q, newEnvelope(t), nil); err != nil {
		t.Fatal(err)
	}
	killConnection(t, mgmt, name)
	// A publish racing the close may fail, with an error; once the client
	// has seen the close, the next publish redials and succeeds.
	env := newEnvelope(t)
	testenv.WaitFor(t, "a publish after the outage to succeed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := p.Publish(ctx, "", q, env, nil)
		if err != nil {
			t.Logf("publish during outage: %v", err)
		}
		return err == nil
	})
	b.waitGet(q)
	if m := b.waitGet(q); m.MessageId != env.ID {
		t.Errorf("got %q, want the message published after the outage %q", m.MessageId, env.ID)
	}
}
