/**
 * AdmissionReview in, AdmissionReview out (admission.k8s.io/v1), pure. Anything that is not a
 * Pod CREATE is allowed untouched; a pod the injector cannot make sense of is denied with the
 * reason (that is a mistake in the pod's own annotations, shown in its ReplicaSet's events); an
 * outage of the webhook itself is what failurePolicy governs, not this.
 */
import { PortcullisError } from '../core/errors.ts';
import { isRecord } from '../core/objects.ts';
import { injectPod } from './inject.ts';
import type { InjectSummary } from './inject.ts';
import type { AdmissionRequest, AdmissionReviewResponse, Pod } from './k8s.ts';
import type { InjectorSettings } from './settings.ts';

export interface ReviewOutcome {
  response: AdmissionReviewResponse;
  /** For the log line. */
  result: 'injected' | 'skipped' | 'denied' | 'ignored';
  reason?: string;
  summary?: InjectSummary;
  namespace?: string;
  pod?: string;
}

/** Throws PortcullisError (USAGE) when `body` is not an AdmissionReview request: a 400 at the edge. */
export function reviewAdmission(body: unknown, settings: InjectorSettings): ReviewOutcome {
  const request = admissionRequest(body);
  const uid = request.uid;
  const allow = (result: ReviewOutcome['result'], reason: string, warnings: string[] = []): ReviewOutcome => ({
    response: envelope({ uid, allowed: true, ...(warnings.length > 0 ? { warnings } : {}) }),
    result,
    reason,
    ...where(request),
  });

  if (request.kind?.kind !== 'Pod' || (request.subResource ?? '') !== '' || request.operation !== 'CREATE') {
    return allow('ignored', `${request.operation ?? '?'} ${request.kind?.kind ?? '?'}${request.subResource ? `/${request.subResource}` : ''}`);
  }
  const pod = request.object;
  if (!isPod(pod)) throw new PortcullisError('USAGE', 'request.object is not a Pod with spec.containers');

  const result = injectPod(pod, settings);
  switch (result.action) {
    case 'skip':
      return allow('skipped', result.reason, result.warnings);
    case 'deny':
      return {
        response: envelope({ uid, allowed: false, status: { code: 400, message: result.message } }),
        result: 'denied',
        reason: result.message,
        ...where(request),
      };
    case 'inject':
      return {
        response: envelope({
          uid,
          allowed: true,
          patchType: 'JSONPatch',
          patch: base64(JSON.stringify(result.patch)),
          ...(result.warnings.length > 0 ? { warnings: result.warnings } : {}),
        }),
        result: 'injected',
        summary: result.summary,
        ...where(request),
      };
  }
}

function envelope(response: AdmissionReviewResponse['response']): AdmissionReviewResponse {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

function admissionRequest(body: unknown): AdmissionRequest {
  if (!isRecord(body) || body['kind'] !== 'AdmissionReview') {
    throw new PortcullisError('USAGE', 'expected an AdmissionReview object');
  }
  if (body['apiVersion'] !== 'admission.k8s.io/v1') {
    throw new PortcullisError('USAGE', `expected apiVersion admission.k8s.io/v1, got ${JSON.stringify(body['apiVersion'])}`);
  }
  const request = body['request'];
  if (!isRecord(request) || typeof request['uid'] !== 'string' || request['uid'] === '') {
    throw new PortcullisError('USAGE', 'AdmissionReview.request.uid is missing');
  }
  return request as AdmissionRequest;
}

function where(request: AdmissionRequest): { namespace?: string; pod?: string } {
  const meta = isPod(request.object) ? request.object.metadata : undefined;
  const pod = request.name || meta?.name || (meta?.generateName ? `${meta.generateName}*` : undefined);
  return {
    ...(request.namespace ? { namespace: request.namespace } : {}),
    ...(pod ? { pod } : {}),
  };
}

function isPod(v: unknown): v is Pod {
  return isRecord(v) && isRecord(v['spec']) && Array.isArray(v['spec']['containers']) && v['spec']['containers'].length > 0;
}

/** base64 of the UTF-8 bytes (pod annotations may hold any text). */
function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
