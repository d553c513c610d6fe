package kafkatest

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRoundTrip produces to and consumes from whatever Brokers gives (the fake, or the broker in
// KAFKA_BROKERS), and checks the offset helpers against what was produced and committed.
func TestRoundTrip(t *testing.T) {
	seeds := Brokers(t)
	topic := UniqueName(t, "roundtrip")
	group := UniqueName(t, "group")
	const partitions, n = 3, 30
	CreateTopic(t, seeds, topic, partitions)

	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{
			Topic: topic,
			Key:   fmt.Appendf(nil, "k%d", i),
			Value: fmt.Appendf(nil, "v%d", i),
		})
	}
	ProduceSync(t, seeds, recs...)

	wantEnd := make(map[int32]int64)
	for _, r := range recs {
		if r.Partition < 0 || r.Partition >= partitions {
			t.Fatalf("record %s went to partition %d, topic has %d", r.Key, r.Partition, partitions)
		}
		wantEnd[r.Partition] = max(wantEnd[r.Partition], r.Offset+1)
	}
	if diff := cmp.Diff(wantEnd, EndOffsets(t, seeds, topic)); diff != "" {
		t.Errorf("EndOffsets mismatch (-want +got):\n%s", diff)
	}
	if got := CommittedOffsets(t, seeds, group, topic); len(got) != 0 {
		t.Errorf("CommittedOffsets before consuming = %v, want none", got)
	}

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	var got []string
	lastOffset := make(map[int32]int64)
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("polling after %d of %d records: %v", len(got), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if prev, ok := lastOffset[r.Partition]; ok && r.Offset <= prev {
				t.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, prev)
			}
			lastOffset[r.Partition] = r.Offset
			got = append(got, string(r.Key)+"="+string(r.Value))
		})
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("k%d=v%d", i, i))
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("consumed records mismatch (-want +got):\n%s", diff)
	}

	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("committing: %v", err)
	}
	if diff := cmp.Diff(wantEnd, CommittedOffsets(t, seeds, group, topic)); diff != "" {
		t.Errorf("CommittedOffsets after consuming everything mismatch (-want +got):\n%s", diff)
	}
}

// TestBrokersFromEnv checks that KAFKA_BROKERS is honoured (blanks dropped) when it answers.
func TestBrokersFromEnv(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(2))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	t.Setenv(EnvBrokers, " "+strings.Join(addrs, " , ")+",")

	if diff := cmp.Diff(addrs, Brokers(t)); diff != "" {
		t.Errorf("Brokers mismatch (-want +got):\n%s", diff)
	}
}

// TestWaitReachableUnreachable checks the check behind Brokers' "never skip" promise: an address
// nobody listens on is reported as an error when the deadline passes, promptly.
func TestWaitReachableUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = waitReachable(ctx, []string{addr})
	if err == nil {
		t.Fatalf("waitReachable(%s) = nil, want an error", addr)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the address %s", err, addr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("waitReachable took %v with a 500ms deadline", d)
	}
	if err := waitReachable(t.Context(), nil); err == nil {
		t.Error("waitReachable with no seeds = nil, want an error")
	}
}

func TestUniqueName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9.-]{1,249}$`)
	for _, name := range []string{"plain", "with space/and_underscore:colon", strings.Repeat("long", 100)} {
		t.Run(name, func(t *testing.T) {
			a, b := UniqueName(t, "pre_fix"), UniqueName(t, "pre_fix")
			if a == b {
				t.Errorf("two calls gave the same name %q", a)
			}
			for _, n := range []string{a, b} {
				if !valid.MatchString(n) {
					t.Errorf("%q is not a valid Kafka topic name", n)
				}
				if !strings.HasPrefix(n, "pre-fix.TestUniqueName-") {
					t.Errorf("%q does not start with the prefix and test name", n)
				}
			}
		})
	}
}
