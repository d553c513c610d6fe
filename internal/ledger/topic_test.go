package ledger

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augment-connector/augment-connector/internal/kafkatest"
)

func TestJudgeTopic(t *testing.T) {
	good := map[string]string{"message.timestamp.type": "LogAppendTime", "cleanup.policy": "delete",
		"retention.ms": "3600000", "min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
	with := func(k, v string) map[string]string {
		c := map[string]string{}
		for a, b := range good {
			c[a] = b
		}
		c[k] = v
		return c
	}
	three := topicShape{replicas: []int{3}}
	tests := []struct {
		name        string
		shape       topicShape
		cfg         map[string]string
		allowUnsafe bool
		wantErr     []string // substrings of the error, each naming a setting
		wantWarn    int
	}{
		{"good", three, good, false, nil, 0},
		{"partitions", topicShape{replicas: []int{3, 3, 3}}, good, true, []string{"partitions is 3, must be 1"}, 0},
		{"create time", three, with("message.timestamp.type", "CreateTime"), true, []string{"message.timestamp.type is \"CreateTime\", must be LogAppendTime"}, 0},
		{"compacted", three, with("cleanup.policy", "compact,delete"), true, []string{"cleanup.policy"}, 0},
		{"short retention", three, with("retention.ms", "60000"), true, []string{"retention.ms is 60000"}, 0},
		{"infinite retention", three, with("retention.ms", "-1"), false, nil, 0},
		{"one replica", topicShape{replicas: []int{1}}, good, false, []string{"replication factor is 1, must be at least 3", "allowUnsafeTopic: true"}, 0},
		{"one replica allowed", topicShape{replicas: []int{1}}, good, true, nil, 1},
		{"min isr 1", three, with("min.insync.replicas", "1"), false, []string{"min.insync.replicas is 1, must be at least 2"}, 0},
		{"unclean", three, with("unclean.leader.election.enable", "true"), false, []string{"unclean.leader.election.enable is true, must be false"}, 0},
		{"all unsafe allowed", topicShape{replicas: []int{1}}, with("min.insync.replicas", "1"), true, nil, 2},
		{"broken and unsafe name both", topicShape{replicas: []int{1, 1}}, with("message.timestamp.type", "CreateTime"), false,
			[]string{"partitions is 2", "message.timestamp.type", "replication factor is 1"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := judgeTopic(TopicOptions{Topic: "l", AllowUnsafe: tt.allowUnsafe}, tt.shape, tt.cfg)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("judgeTopic: %v", err)
				}
			} else {
				if err == nil {
					t.Fatalf("judgeTopic accepted it (warnings %v)", w)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
			}
			if len(w) != tt.wantWarn {
				t.Errorf("warnings %q, want %d", w, tt.wantWarn)
			}
		})
	}
}

func TestEnsureTopicCreates(t *testing.T) {
	t.Parallel()
	lc := newLogCluster(t, 3)
	cl := lc.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topic := kafkatest.UniqueName(t, "ledger")
	for i := range 2 { // creates, then checks the topic it created
		w, err := EnsureTopic(ctx, cl, TopicOptions{Topic: topic})
		if err != nil || len(w) > 0 {
			t.Fatalf("EnsureTopic #%d: %v (warnings %v)", i+1, err, w)
		}
	}
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		got[c.Key] = c.MaybeValue()
	}
	for k, v := range map[string]string{"message.timestamp.type": "LogAppendTime", "cleanup.policy": "delete",
		"retention.ms": topicRetention, "segment.ms": topicSegment, "min.insync.replicas": "2"} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestEnsureTopicRefusesExisting(t *testing.T) {
	t.Parallel()
	lc := newLogCluster(t, 3)
	cl := lc.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topic := kafkatest.UniqueName(t, "ledger")
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	_, err := EnsureTopic(ctx, cl, TopicOptions{Topic: topic, AllowUnsafe: true})
	if err == nil {
		t.Fatal("EnsureTopic accepted a 3-partition CreateTime topic")
	}
	for _, s := range []string{"partitions is 3, must be 1", "message.timestamp.type is \"CreateTime\"", "min.insync.replicas is 1"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

// TestEnsureTopicOneBroker: a one-node cluster cannot hold the ledger safely: EnsureTopic
// says which setting accepts it, creates nothing, and with AllowUnsafe creates the topic and
// returns the risks as warnings.
func TestEnsureTopicOneBroker(t *testing.T) {
	t.Parallel()
	lc := newLogCluster(t, 1)
	cl := lc.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topic := kafkatest.UniqueName(t, "ledger")
	_, err := EnsureTopic(ctx, cl, TopicOptions{Topic: topic})
	if err == nil || !strings.Contains(err.Error(), "budget.ledger.allowUnsafeTopic: true") {
		t.Fatalf("EnsureTopic on one broker = %v, want an error naming budget.ledger.allowUnsafeTopic: true", err)
	}
	if _, err := describeTopic(ctx, cl, topic); err == nil {
		t.Fatal("the refused topic was created")
	}
	w, err := EnsureTopic(ctx, cl, TopicOptions{Topic: topic, AllowUnsafe: true})
	if err != nil || len(w) == 0 {
		t.Fatalf("EnsureTopic with AllowUnsafe = %v, warnings %q; want warnings", err, w)
	}
	t.Logf("warnings: %q", w)
}

// TestEnsureTopicRealBroker runs against KAFKA_BROKERS when set (a real broker applies the
// topic's configs itself, so this is where LogAppendTime and ListOffsets by time are real).
func TestEnsureTopicRealBroker(t *testing.T) {
	if os.Getenv(kafkatest.EnvBrokers) == "" {
		t.Skip("KAFKA_BROKERS not set")
	}
	seeds := kafkatest.Brokers(t)
	cl := kafkatest.Client(t, seeds, kgo.ProducerLinger(0))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := kafkatest.UniqueName(t, "ledger")
	adm := kadm.NewClient(cl)
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := EnsureTopic(ctx, cl, TopicOptions{Topic: topic, AllowUnsafe: len(brokers) < 3})
	if err != nil {
		t.Fatalf("EnsureTopic: %v", err)
	}
	t.Logf("%d broker(s); warnings %q", len(brokers), w)
	// A member runs on it: hello, rebuild by ListOffsets by time, a claim.
	m, err := NewMember(cl, MemberConfig{Topic: topic, ID: "real-1", MaxRequestTimeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Register(testAccount)
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(rctx) }()
	c, err := m.Acquire(ctx, testAccount.Key, nil, nil)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if _, ok := c.Start(); !ok {
		t.Fatal("a fresh claim could not start")
	}
	c.Finish(UseFinished)
	if err := m.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
	rcancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
