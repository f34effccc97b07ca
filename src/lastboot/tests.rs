//! Tests of the classifier and the sources on literal kernel text.

