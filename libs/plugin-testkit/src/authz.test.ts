import { authzBody, authzPluginSuite } from './authz/suite.js';
import { fakeAuthzPlugin } from './authz/fake.js';

// The fake passes the contract and its own decisions, in-process and over the socket.
authzPluginSuite('fake', fakeAuthzPlugin, {
  cases: [
    { title: 'a plain list', call: 'AuthZReq', req: { RequestMethod: 'GET', RequestUri: '/v1.41/containers/json?all=1' }, allow: true },
    { title: 'privileged', call: 'AuthZReq', req: { RequestMethod: 'POST', RequestUri: '/v1.41/containers/create', RequestBody: authzBody({ Image: 'busybox', HostConfig: { Privileged: true } }) }, allow: false },
    { title: 'not privileged', call: 'AuthZReq', req: { RequestMethod: 'POST', RequestUri: '/containers/create', RequestBody: authzBody({ Image: 'busybox', HostConfig: { Privileged: false } }) }, allow: true },
    { title: 'volume rm', call: 'AuthZReq', req: { RequestMethod: 'DELETE', RequestUri: '/v1.47/volumes/data' }, allow: false },
    { title: 'answers pass', call: 'AuthZRes', req: { RequestMethod: 'GET', RequestUri: '/info', ResponseStatusCode: 200 }, allow: true },
  ],
});
