// The local AWS's IAM engine: one long-lived process that answers authorization requests with
// @cloud-copilot/iam-simulate. The Python side (localaws/iam/engine.py) owns it.
//
// Protocol: one JSON object per line on stdin, one answer per line on stdout, in order.
//   request: {"id": n, "policies": {digest: document, ...}, "checks": [check, ...]}
//   check:   {"principal", "action", "resource", "account", "context": {key: value | [values]},
//             "identity": [[name, digest], ...], "resourcePolicy": digest | null,
//             "boundary": [[name, digest], ...]}
//   answer:  {"id": n, "decisions": [{"result", "denials": [...]} | {"error": message}, ...]}
// Policies travel once: a request carries only the documents this process has not seen yet, and
// checks name them by digest. One request holds every check of an operation (one round trip).

import { createInterface } from 'node:readline'
import { getDenialReasons, runSimulation } from '@cloud-copilot/iam-simulate'

/** Documents by digest, with the patterns the engine cannot match (see resolvable). */
const policies = new Map()

// iam-simulate takes the text before an ARN's first "/" or ":" after the account as a literal
// resource type, so a wildcard there never matches ("arn:aws:ec2:*:111122223333:*/*" matches
// no instance). IAM's documented rule: "*" matches any characters within the segment, "/"
// included. Such patterns are matched here, by that rule, against the request's resource.
const WILDCARD_TYPE = /^arn:[^:]*:[^:]*:[^:]*:[^:]*:[^/:]*[*?]/

function globRegExp(pattern) {
  const body = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/, '\\$&')))
    .join('')
  return new RegExp(`^${body}$`, 's')
}

function asList(value) {
  return Array.isArray(value) ? value : [value]
}

// AWS's public SSM parameters have ARNs without an account ("arn:aws:ssm:eu-west-1::parameter/
// aws/service/..."), which iam-simulate cannot type. Such requests are judged with a stand-in
// account written into the resource and into every account-less SSM pattern alike (so "" still
// matches only "", and "*" both), with a resource policy sharing the parameter with everyone, as
// AWS shares these parameters with every account.
const ACCOUNTLESS_SSM = /^(arn:[^:]*:ssm:[^:]*:)(:)/
const PUBLIC_OWNER = '000000000000'
const SHARED_WITH_EVERYONE = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: '*', Action: 'ssm:GetParameter*', Resource: '*' }]
}

function needsRewrite(pattern) {
  return (WILDCARD_TYPE.test(pattern) && !pattern.includes('${')) || ACCOUNTLESS_SSM.test(pattern)
}

function remember(digest, given) {
  // A Sid is text, but a YAML template's `Sid: 1` is a number, which CloudFormation passes on as
  // "1"; iam-simulate refuses the whole policy for it. A Sid never changes a decision.
  const document = Array.isArray(given.Statement)
    ? {
        ...given,
        Statement: given.Statement.map((s) =>
          typeof s?.Sid === 'number' ? { ...s, Sid: String(s.Sid) } : s
        )
      }
    : given
  const statements = asList(document.Statement ?? [])
  const resolvable = statements.some((statement) =>
    ['Resource', 'NotResource'].some(
      (element) => element in statement && asList(statement[element]).some(needsRewrite)
    )
  )
  policies.set(digest, { document, resolvable })
}

function ownedByPublic(arn) {
  return arn.replace(ACCOUNTLESS_SSM, `$1${PUBLIC_OWNER}:`)
}

/** The document as the engine should see it for `resource`: wildcard-type patterns that match
 * the resource by IAM's rule are replaced by the resource itself; account-less SSM patterns
 * get the stand-in owner. */
function forResource(digest, resource) {
  const entry = policies.get(digest)
  if (entry === undefined) {
    throw new Error(`policy ${digest} was never sent`)
  }
  if (!entry.resolvable) {
    return entry.document
  }
  const resolve = (pattern) => {
    const owned = ownedByPublic(pattern)
    const typeIsWild = WILDCARD_TYPE.test(owned) && !owned.includes('${')
    return typeIsWild && globRegExp(owned).test(resource) ? resource : owned
  }
  const statements = asList(entry.document.Statement).map((statement) => {
    const copy = { ...statement }
    for (const element of ['Resource', 'NotResource']) {
      if (element in copy) {
        copy[element] = Array.isArray(copy[element])
          ? copy[element].map(resolve)
          : resolve(copy[element])
      }
    }
    return copy
  })
  return { ...entry.document, Statement: statements }
}

async function decide(check) {
  const isPublic = ACCOUNTLESS_SSM.test(check.resource)
  const resource = isPublic ? ownedByPublic(check.resource) : check.resource
  const named = (pairs) =>
    pairs.map(([name, digest]) => ({ name, policy: forResource(digest, resource) }))
  let resourcePolicy = check.resourcePolicy ? forResource(check.resourcePolicy, resource) : undefined
  if (isPublic) {
    resourcePolicy = SHARED_WITH_EVERYONE
  }
  const simulation = {
    request: {
      principal: check.principal,
      action: check.action,
      resource: { resource, accountId: isPublic ? PUBLIC_OWNER : check.account },
      contextVariables: check.context
    },
    identityPolicies: named(check.identity),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    permissionBoundaryPolicies: check.boundary.length ? named(check.boundary) : undefined,
    resourcePolicy
  }
  const response = await runSimulation(simulation, {})
  if (response.resultType === 'error') {
    return { error: JSON.stringify(response.errors) }
  }
  const analyses =
    response.resultType === 'single'
      ? [response.result.analysis]
      : response.results.map((r) => r.analysis)
  const denials = response.overallResult === 'Allowed' ? [] : analyses.flatMap(missingSide)
  return { result: response.overallResult, denials }
}

/** The engine's denial reasons; for a cross-account request with no resource policy at all it
 * gives none, where AWS names the missing side ("because no resource-based policy allows"). */
function missingSide(analysis) {
  const denials = getDenialReasons(analysis)
  if (denials.length || analysis.result === 'Allowed') {
    return denials
  }
  const identityAllows = analysis.identityAnalysis?.result === 'Allowed'
  return [{ policyType: identityAllows ? 'resource' : 'identity', denialType: 'Implicit' }]
}

async function answer(line) {
  const request = JSON.parse(line)
  for (const [digest, document] of Object.entries(request.policies ?? {})) {
    remember(digest, document)
  }
  const decisions = []
  for (const check of request.checks) {
    try {
      decisions.push(await decide(check))
    } catch (error) {
      decisions.push({ error: String(error?.message ?? error) })
    }
  }
  return { id: request.id, decisions }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
process.stdout.write(JSON.stringify({ ready: true }) + '\n')
for await (const line of lines) {
  if (line.trim() === '') continue
  let reply
  try {
    reply = await answer(line)
  } catch (error) {
    reply = { id: null, fatal: String(error?.message ?? error) }
  }
  process.stdout.write(JSON.stringify(reply) + '\n')
}
