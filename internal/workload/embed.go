package workload

import _ "embed"

// DemoPipelines is demo-pipelines.yaml: the pipelines whose output Event.Vars models, as a
// YAML document with a top-level pipelines key, for the demo's embedded config and the tests.
//
//go:embed demo-pipelines.yaml
var DemoPipelines string

// DemoJoins is demo-joins.yaml: the demo's lookup tables (a top-level tables key) and its
// call-start pipeline (under pipelines), for the demo's embedded config when it runs with
// calls (Options.CallRatio).
//
//go:embed demo-joins.yaml
var DemoJoins string

// DemoCustomersIdentifier is the identifier of the customers pipeline in DemoPipelines, and
// DemoCustomersJoinIdentifier what it becomes with the joins: the row's own interaction and
// every active call of the customer.
const (
	DemoCustomersIdentifier     = "identifier: after.interaction_id"
	DemoCustomersJoinIdentifier = `identifier: 'concat([after.interaction_id], map(lookupAll("activeInteractions", after.id), .interactionId))'`
)
