"""The cloud half of `infra/`: CDK constructs, one per capability, and the stack composing them.

`infra.app` builds the app from these; the local stack (moto + gateway emulator) never imports
this package, so running Tether locally needs neither aws-cdk-lib nor Node.js. Named `cloud`,
not `constructs`, so it cannot shadow the `constructs` library that aws-cdk-lib imports.
"""
