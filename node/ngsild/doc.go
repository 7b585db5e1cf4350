// Package ngsild implements MIM1: the NGSI-LD entity model, @context
// handling, the query language, geo-queries, the entity store and its HTTP handlers.
package ngsild
