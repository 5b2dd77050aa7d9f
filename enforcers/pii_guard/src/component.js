// Component entry point for componentize-js: wires the plain enforcer module to the WIT world
// `portcullis:policy/policy-enforcer` (import `host`, export `enforcer`). Keep logic out of here.

import { log } from 'portcullis:policy/host@0.1.0';
import { createEnforcer, warmUp } from './enforcer.js';

export const enforcer = createEnforcer(log);

// Evaluated while the component is snapshotted, not per call: see warmUp(). It must not call
// `log`, as host imports are not available then.
warmUp();
