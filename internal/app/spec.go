package app

import (
	"github.com/augment-connector/augment-connector/internal/config"
	"github.com/augment-connector/augment-connector/transform"
)

// spec converts a pipeline as configured to the Spec transform compiles. The conversion lives
// here, not in config, so that config only parses and places keys while transform alone says
// what a pipeline means: config does not import transform. Expressions are not compiled here;
// Compile compiles them and reports each failure at its key path with config's position
// (pipelines[i].filter, .identifier, .recordTime, .requireActive.expression,
// .variables[j].value, .variables[j].<attr>). maxRecordAge and onStale are the connector's, not
// transform's: Options passes them on.
func spec(p *config.PipelineConfig) transform.Spec {
	s := transform.Spec{
		Name:         p.Name,
		Filter:       p.Filter,
		Identifier:   p.Identifier,
		OnDelete:     p.OnDelete,
		OnLookupMiss: p.OnLookupMiss,
		RecordTime:   p.RecordTime,
		Variables:    make([]transform.VariableSpec, len(p.Variables)),
	}
	if ra := p.RequireActive; ra != nil {
		s.RequireActive = &transform.ActiveSpec{Table: ra.Table, Expression: ra.Expression}
	}
	for i, v := range p.Variables {
		s.Variables[i] = transform.VariableSpec{
			Name:        v.Name,
			Value:       v.Value,
			IVR:         boolAttr(v.IVR),
			Display:     boolAttr(v.Display),
			Privacy:     boolAttr(v.Privacy),
			DisplayName: stringAttr(v.DisplayName),
			DataType:    stringAttr(v.DataType),
		}
	}
	return s
}

// boolAttr is a literal bool attribute, or its expression when one is written.
func boolAttr(a config.BoolAttr) transform.Attr {
	if a.Expr != "" {
		return transform.Attr{Expr: a.Expr}
	}
	return transform.Attr{Literal: a.Value}
}

// stringAttr is a literal string attribute, or its expression when one is written.
func stringAttr(a config.StringAttr) transform.Attr {
	if a.Expr != "" {
		return transform.Attr{Expr: a.Expr}
	}
	return transform.Attr{Literal: a.Value}
}
