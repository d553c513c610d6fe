package workload

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/augment-connector/augment-connector/schemas"
)

// Register registers the shipped schemas under the subjects of opts' topics, by the topic name
// strategy ("<topic>-key", "<topic>-value"), and returns their ids for Options.IDs.
// Registering a schema that a subject already holds returns its existing id, so Register may
// run against a registry that has them.
func Register(ctx context.Context, cl *sr.Client, opts Options) (SchemaIDs, error) {
	topic := func(t, def string) string {
		if t == "" {
			return def
		}
		return t
	}
	customers := topic(opts.CustomersTopic, CustomersTopic)
	orders := topic(opts.OrdersTopic, OrdersTopic)
	flat := topic(opts.FlatTopic, FlatTopic)
	var ids SchemaIDs
	for _, r := range []struct {
		subject string
		schema  string
		dst     *int
	}{
		{customers + "-key", schemas.CustomerKey, &ids.CustomerKey},
		{customers + "-value", schemas.CustomerValue, &ids.CustomerValue},
		{orders + "-key", schemas.OrderKey, &ids.OrderKey},
		{orders + "-value", schemas.OrderValue, &ids.OrderValue},
		{flat + "-key", schemas.CustomerKey, &ids.FlatKey},
		{flat + "-value", schemas.CustomerFlat, &ids.CustomerFlat},
	} {
		ss, err := cl.CreateSchema(ctx, r.subject, sr.Schema{Schema: r.schema, Type: sr.TypeAvro})
		if err != nil {
			return SchemaIDs{}, fmt.Errorf("registering subject %q: %w", r.subject, err)
		}
		*r.dst = ss.ID
	}
	return ids, nil
}
