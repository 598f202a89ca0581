import type {
	DeclarativeRestApiSettings,
	IDataObject,
	IExecutePaginationFunctions,
	INodeExecutionData,
} from 'n8n-workflow';
import { memrelayError } from './descriptions';

/** memrelay's /search pages by `page` + `pageSize` and says `hasMore`: ask for page 1, 2, … until it says no. */
export async function searchEveryPage(
	this: IExecutePaginationFunctions,
	requestData: DeclarativeRestApiSettings.ResultOptions,
): Promise<INodeExecutionData[]> {
	const items: INodeExecutionData[] = [];
	const first = (requestData.options.body ?? {}) as IDataObject;
	for (let page = Number(first.page ?? 1); ; page++) {
		const { baseURL, headers, method } = requestData.options;
		const answer = (await this.helpers.httpRequestWithAuthentication.call(this, 'memrelayApi', {
			baseURL,
			headers,
			method,
			url: requestData.options.url ?? '/search',
			body: { ...first, page },
			json: true,
			ignoreHttpStatusErrors: true,
			returnFullResponse: true,
		})) as { statusCode: number; body: IDataObject };
		if (answer.statusCode >= 400) throw memrelayError(this.getNode(), answer.statusCode, answer.body);
		const data = (answer.body.data ?? {}) as IDataObject;
		for (const record of (data.results as IDataObject[]) ?? []) items.push({ json: record });
		if (!data.hasMore) return items;
	}
}
