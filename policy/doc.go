// Package policy implements the ODRL subset mimnode uses for usage policies,
// its evaluator, and signed agreements. It is pure: no I/O, time is passed in.
package policy
