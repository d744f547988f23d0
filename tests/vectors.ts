// The independent vectors in ../shared (made by pypush against Apple's servers); imported, so the same
// file feeds the Node and the Chromium runs.
import vectors from '../../shared/vectors/protocol-vectors.json';

export type Vectors = typeof vectors;
export default vectors;
