// Package catalog describes datasets in DCAT-AP terms, signs catalogue records,
// keeps the federated index and answers searches. It does no I/O of its own.
package catalog
