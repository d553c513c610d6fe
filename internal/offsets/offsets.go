// Package offsets compares what a consumer group has committed with the end of its topics:
// how far behind the group is, partition by partition. The bench, the demo and the replay
// command all decide "done" by it (every record produced is committed), so the rule of what
// counts as caught up lives here once instead of in three loops that could drift apart.
//
// It only reads: it never commits, and needs an admin client, not a group member.
package offsets

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Partition is one partition's position: what the group committed and where the topic ends.
type Partition struct {
	Topic     string
	Partition int32
	// Committed is the group's committed offset (the offset of the next record it will
	// consume), or -1 when it has committed nothing on this partition.
	Committed int64
	// End is the offset the next record produced to the partition will get.
	End int64
}

// Lag is how many records of the partition the group has yet to commit: all of them when it
// committed nothing.
func (p Partition) Lag() int64 {
	return p.End - max(p.Committed, 0)
}

// Lags is the position of every partition of the topics asked about, sorted by topic and
// partition.
type Lags []Partition

// Totals sums the committed offsets (partitions without a commit count as 0), the end offsets
// and the lag over every partition: the figures a summary prints.
func (l Lags) Totals() (committed, end, lag int64) {
	for _, p := range l {
		committed += max(p.Committed, 0)
		end += p.End
		lag += p.Lag()
	}
	return committed, end, lag
}

// Reached reports whether the group has committed, on every partition of ends that holds
// records, at least the end ends recorded: everything produced before ends was read has been
// consumed, whatever arrived since. l.Reached(l) is "caught up now".
func (l Lags) Reached(ends Lags) bool {
	for _, e := range ends {
		if e.End == 0 {
			continue
		}
		i, found := slices.BinarySearchFunc(l, e, compare)
		if !found || l[i].Committed < e.End {
			return false
		}
	}
	return true
}

func compare(a, b Partition) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// Ends lists the end offset of every partition of topics, with Committed -1: the mark Reached
// compares a later Lag against. A partition whose end cannot be read is an error rather than a
// guess, so a caller never believes a group caught up with an end it did not see.
func Ends(ctx context.Context, adm *kadm.Client, topics ...string) (Lags, error) {
	listed, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	var out Lags
	listed.Each(func(o kadm.ListedOffset) {
		out = append(out, Partition{Topic: o.Topic, Partition: o.Partition, Committed: -1, End: o.Offset})
	})
	slices.SortFunc(out, compare)
	return out, nil
}

// Lag reads group's committed offset and the end offset of every partition of topics. A
// group that never committed (Kafka answers -1 offsets, kfake GROUP_ID_NOT_FOUND) has Committed
// -1 everywhere; any other failure is returned, wrapped.
func Lag(ctx context.Context, adm *kadm.Client, group string, topics ...string) (Lags, error) {
	out, err := Ends(ctx, adm, topics...)
	if err != nil {
		return nil, err
	}
	fetched, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetching offsets of group %q: %w", group, err)
	}
	for i := range out {
		if c, ok := fetched.Lookup(out[i].Topic, out[i].Partition); ok && c.Err == nil && c.At >= 0 {
			out[i].Committed = c.At
		}
	}
	return out, nil
}
