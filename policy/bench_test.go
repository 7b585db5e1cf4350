package policy

import (
	"encoding/json"
	"testing"
)

// tenConstraints is a realistic transfer-time policy: who, why, where, when,
// how often and for how much.
func tenConstraints() Policy {
	p := Policy{Type: TypeAgreement, Assigner: "peer-P", Assignee: "peer-A", Permissions: []Rule{{
		Action: ActionUse,
		Constraints: []Constraint{
			Atomic(LeftRecipient, OpIsNoneOf, Lit("peer-X", "peer-Y")),
			Atomic(LeftRole, OpIsAnyOf, Lit(RoleAgency, RoleResearcher)),
			Atomic(LeftFederation, OpEq, Lit("fed-nl")),
			Atomic(LeftPurpose, OpIsAnyOf, Lit("research", "education", "public-health")),
			Atomic(LeftDateTime, OpLt, DateTimeOp(t0.AddDate(1, 0, 0))),
			Atomic(LeftElapsedTime, OpLteq, DurationOp("P30D")),
			Atomic(LeftCount, OpLteq, Num(100)),
			Atomic(LeftSpatial, OpIsPartOf, Area(amsterdam)),
			Atomic(LeftSpatial, OpIsNoneOf, Lit("US", "CN")),
			Atomic(LeftPayAmount, OpGteq, Num(5)),
		},
	}}}
	p.Compile()
	return p
}

// BenchmarkEvaluate10Constraints: evaluations per second for a
// 10-constraint policy in the transfer scope (target: > 1,000,000/s on one core).
func BenchmarkEvaluate10Constraints(b *testing.B) {
	p := tenConstraints()
	req := baseReq()
	req.Federations = []string{"fed-nl"}
	if d := Evaluate(p, req, ScopeTransfer); !d.Permit {
		b.Fatalf("benchmark policy denies:\n%s", d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		Evaluate(p, req, ScopeTransfer)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "evals/s")
}

// BenchmarkParse measures reading and compiling a template policy.
func BenchmarkParse(b *testing.B) {
	data, err := Marshal(tenConstraints())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshal measures writing a template policy as JSON-LD, and the
// json.Marshal it takes for trees it cannot write itself.
func BenchmarkMarshal(b *testing.B) {
	p := tenConstraints()
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Marshal(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := policyJSON(p)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
