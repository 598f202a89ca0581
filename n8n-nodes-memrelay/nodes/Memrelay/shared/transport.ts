import type {
	IDataObject,
	IHookFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	ILoadOptionsFunctions,
	IWebhookFunctions,
} from 'n8n-workflow';

type Context = IHookFunctions | ILoadOptionsFunctions | IWebhookFunctions;

/** One memrelay API call with the memrelayApi credential; `/api/v1` answers are unwrapped from `data`. */
export async function memrelayRequest(
	this: Context,
	method: IHttpRequestMethods,
	path: string,
	body?: IDataObject,
	qs?: IDataObject,
): Promise<unknown> {
	const credentials = await this.getCredentials('memrelayApi');
	const baseUrl = String(credentials.baseUrl).replace(/\/+$/, '');
	const options: IHttpRequestOptions = { method, url: `${baseUrl}/api/v1${path}`, json: true };
	if (body) options.body = body;
	if (qs) options.qs = qs;
	const answer = (await this.helpers.httpRequestWithAuthentication.call(
		this,
		'memrelayApi',
		options,
	)) as IDataObject;
	return answer && typeof answer === 'object' && 'success' in answer && 'data' in answer
		? answer.data
		: answer;
}
